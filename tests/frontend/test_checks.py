"""Semantic checks on twin fixtures: each invalid/NAME.snn names its expected diagnostic in a header
`# expect: CODE LINE:COL message fragment`; valid/NAME.snn is the same file with the mistake fixed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from snnc.frontend import check_file, load_file, load_source
from snnc.ir.diagnostics import DiagnosticError

HERE = Path(__file__).parent
INVALID = sorted((HERE / "invalid").glob("*.snn"))
_EXPECT = re.compile(r"# expect: (\S+) (\d+):(\d+) (.*)")


def _expectation(path: Path) -> tuple[str, int, int, str]:
    m = _EXPECT.match(path.read_text().splitlines()[0])
    assert m, f"{path.name} lacks an '# expect:' header"
    code, line, col, fragment = m.groups()
    return code, int(line), int(col), fragment.strip()


def test_there_are_enough_fixtures():
    assert len(INVALID) >= 20
    for path in INVALID:
        assert (HERE / "valid" / path.name).exists(), f"no valid twin for {path.name}"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_reports_expected_diagnostic(path: Path):
    code, line, col, fragment = _expectation(path)
    errors = [d for d in check_file(str(path)) if d.severity == "error"]
    assert errors, f"{path.name}: no error reported"
    found = [(d.code, d.span.line, d.span.col, d.message) for d in errors]
    assert any(c == code and (ln, cl) == (line, col) and fragment in msg for c, ln, cl, msg in found), (
        f"{path.name}: expected {code} at {line}:{col} containing {fragment!r}, got {found}"
    )
    # load_file raises with the same diagnostic, never a traceback of another kind
    with pytest.raises(DiagnosticError) as ei:
        load_file(str(path))
    assert code in {d.code for d in ei.value.diagnostics}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_valid_twin_has_no_errors(path: Path):
    twin = HERE / "valid" / path.name
    errors = [d for d in check_file(str(twin)) if d.severity == "error"]
    assert not errors, [d.render() for d in errors]
    load_file(str(twin))


def test_one_run_reports_several_errors():
    text = (HERE / "valid" / "undefined_model.snn").read_text()
    text = text.replace("hidden h = LIF(10)", "hidden h = LIFF(10)")
    text = text.replace("param tau = 5 ms", "param tau = 5 msec")
    text = text.replace("dt = 1 ms", "dt = 1 mV")
    with pytest.raises(DiagnosticError) as ei:
        load_source(text, "multi.snn")
    codes = sorted(d.code for d in ei.value.diagnostics if d.severity == "error")
    assert codes == ["E-DIM", "E-UNDEFINED", "E-UNIT"]


def test_did_you_mean_hints():
    diags = check_file(str(HERE / "invalid" / "undefined_model.snn"))
    assert any(d.hint == "did you mean 'LIF'?" for d in diags)
    diags = check_file(str(HERE / "invalid" / "unknown_param_override.snn"))
    assert any(d.hint == "did you mean 'tau_mem'?" for d in diags)


def test_rendered_diagnostic_has_location_and_caret():
    path = HERE / "invalid" / "ode_dimension.snn"
    d = next(d for d in check_file(str(path)) if d.code == "E-DIM")
    text = d.render({str(path): path.read_text()})
    assert f"{path}:{d.span.line}:{d.span.col}: error:" in text
    assert "^" in text and "dv/dt" in text


KEYWORD_NAMES = """
neuron N {
    param double = 1.0
    param for = 2 ms
    param id = 3.0
    param batch = 4.0
    state v = 0.0
    dv/dt = -v / for * double * id / batch
}
network net {
    hidden a = N(2, double = 2.0)
}
"""


def test_c_and_python_keywords_are_accepted_as_names():
    net = load_source(KEYWORD_NAMES, "kw.snn")
    assert net.populations["a"].params == {"double": 2.0, "for": 2.0, "id": 3.0, "batch": 4.0}


def test_library_file_without_network_is_valid():
    net = load_source("neuron N {\n    state v = 0.0\n}\n", "lib.snn")
    assert net.name == "" and net.populations == {}


def test_warning_for_unknown_train_setting_is_kept_as_option():
    text = (HERE / "valid" / "undefined_model.snn").read_text()
    text = text.replace("dt = 1 ms", "dt = 1 ms\n    momentum = 0.5")
    net = load_source(text, "w.snn")
    assert net.train.options == {"momentum": 0.5}
    assert any(d.code == "W-SETTING" and d.severity == "warning" for d in check_file_text(text))


def check_file_text(text: str):
    from snnc.frontend import check_source

    return check_source(text, "w.snn")


PADDED = """use std.{SpikeInput, LIF, Exponential}
network padded {
    input x = SpikeInput((5, 5, 1))
    output c = LIF((3, 3, 2), readout = spike_count)
    x -> c : Conv2D(filters = 2, kernel = 3, stride = 2, padding = PAD, weight = 0.5), Exponential
}
"""


@pytest.mark.parametrize(
    ("pad", "code", "words"),
    [
        ("-1", "E-VALUE", "padding must be at least 0, not -1"),
        ('"full"', "E-VALUE", 'padding must be "valid" or "same", not \'full\''),
        ("(1, 2, 3)", "E-SHAPE", "padding must be a number or a pair (h, w)"),
        ("(0, 0)", "E-SHAPE", "Conv2D maps (5, 5, 1) to (2, 2, 2)"),
    ],
)
def test_conv2d_padding_numbers_are_checked_at_the_argument(pad, code, words):
    load_source(PADDED.replace("PAD", "(1, 1)"), "p.snn")  # the valid twins
    load_source(PADDED.replace("PAD", "same"), "p.snn")  # a bare choice, as before
    (d,) = [d for d in check_file_text(PADDED.replace("PAD", pad)) if d.severity == "error"]
    assert d.code == code and words in d.message, d.message
    assert d.span.line == 5


DILATED = """use std.{SpikeInput, LIF, Exponential}
network dilated {
    input x = SpikeInput((7, 7, 4))
    output c = LIF((3, 3, 6), readout = spike_count)
    x -> c : Conv2D(filters = 6, kernel = 3, ARGS, weight = 0.5), Exponential
}
"""


def test_conv2d_dilation_and_groups_are_read_and_checked_at_the_argument():
    """dilation (d or (dh, dw)) widens the window to d (k - 1) + 1; groups must divide C and F."""
    net = load_source(DILATED.replace("ARGS", "dilation = 2, groups = 2"), "d.snn")
    assert net.projections["x_to_c"].connectivity.args["dilation"] == (2, 2)
    assert net.projections["x_to_c"].connectivity.args["groups"] == 2
    net = load_source(DILATED.replace("ARGS", "padding = (1, 0), dilation = (3, 2)"), "d.snn")
    assert net.projections["x_to_c"].connectivity.args["dilation"] == (3, 2)
    # at 1 they are left out of the IR, which then prints (and hashes) as it did before them
    net = load_source(
        DILATED.replace("(3, 3, 6)", "(5, 5, 6)").replace("ARGS", "dilation = 1, groups = 1"), "d.snn"
    )
    assert "dilation" not in net.projections["x_to_c"].connectivity.args
    for args, code, words, at in [  # `at`: the text whose last character the error points at
        ("dilation = 2, groups = 4", "E-VALUE", "groups = 4 does not divide the 6 filters", "groups = 4"),
        (
            "dilation = 2, groups = 3",
            "E-VALUE",
            "groups = 3 does not divide the 4 input channels",
            "groups = 3",
        ),
        ("dilation = 0", "E-VALUE", "dilation must be at least 1, not 0", "dilation = 0"),
        ("dilation = 1", "E-SHAPE", "Conv2D maps (7, 7, 4) to (5, 5, 6)", "C"),  # the call
    ]:
        text = DILATED.replace("ARGS", args)
        (d,) = [d for d in check_file_text(text) if d.severity == "error"]
        assert d.code == code and words in d.message, d.message
        line = text.splitlines()[4]
        assert (d.span.line, d.span.col) == (5, line.index(at, line.index("Conv2D")) + len(at)), args
