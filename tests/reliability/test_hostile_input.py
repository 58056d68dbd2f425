"""Hostile names and strings: they compile and simulate like plain ones, or are clear diagnostics.

Names that are C, Python or GeNN keywords or builtins must be mangled on their way into generated
code, so a network spelt with them must spike exactly like the same network with plain names. Paths
with quotes, backslashes and newlines are data: they are loaded (never executed or unpickled) or
refused with a diagnostic.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from snnc.frontend import check_source
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.artefact import RecordRequest
from snnc.runtime.encoding import latency_encode

from snnc.api import compile_network

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ["snnc", "frontend", "ir", "passes", "backends", "runtime"]

TEMPLATE = """
use std.{SpikeInput}

neuron {M} {
    param {P1} = 10 ms
    param {P2} = 1.0
    state {S} = 0.0
    input {I}
    d{S}/dt = ({I} - {S}) / {P1}
    spike when {S} >= {P2}
    reset { {S} = 0.0 }
}

synapse {SYN} {
    param {P3} = 5 ms
    state {S2} = 0.0
    d{S2}/dt = -{S2} / {P3}
    on_pre { {S2} += w }
    output {S2}
}

network {NET} {
    input {IN} = SpikeInput(4)
    hidden {H} = {M}(20, {P1} = 10 ms)
    output {O} = {M}(3, readout = spike_count)
    {IN} -> {H} : Dense(weight = Normal(mean = 1.5, sd = 0.5)), {SYN}({P3} = 5 ms)
    {H} -> {O} : Dense(weight = File("{W}")), {SYN}
}
"""

PLAIN = dict(
    M="Neu",
    P1="tau",
    P2="thr",
    S="v",
    I="isyn",
    SYN="Syn",
    P3="tau_s",
    S2="g",
    NET="net",
    IN="x",
    H="h",
    O="out",
)
HOSTILE = {
    "c": dict(M="double", P1="for", P2="int", S="while", I="return", SYN="printf", P3="NULL", S2="static", NET="main", IN="malloc", H="free", O="exit"),
    "python": dict(M="lambda", P1="self", P2="import", S="None", I="class", SYN="def", P3="yield", S2="pass", NET="print", IN="id", H="batch", O="len"),
    "genn": dict(M="NeuronModel", P1="DT", P2="Isyn", S="V", I="inSyn", SYN="addToPost", P3="id_pre", S2="id_post", NET="model", IN="group", H="spike", O="exp"),
    "mixed": dict(M="sizeof", P1="const", P2="float", S="auto", I="scalar", SYN="struct", P3="signed", S2="goto", NET="union", IN="stdin", H="batch_size", O="num_steps"),
}  # fmt: skip
WEIGHT_FILE = "w.npy"


def fill(names: dict[str, str], weight_path: str = WEIGHT_FILE) -> str:
    text = TEMPLATE
    for key, value in {**names, "W": weight_path}.items():
        text = text.replace("{" + key + "}", value)
    return text


def simulate(folder: Path, names: dict[str, str], weight_path: str = WEIGHT_FILE) -> dict[str, np.ndarray]:
    """Compile `names`' network from a file in `folder` and return the spike rasters of h and out."""
    src = folder / f"{abs(hash(tuple(names.values())))}.snn"
    src.write_text(fill(names, weight_path), encoding="utf-8")
    net = compile_network(src, batch_size=3, dt=0.5, duration=30.0, seed=7)
    x = latency_encode(np.random.default_rng(0).random((3, 4)), 2.0, 27.0)
    res = net.run({names["IN"]: x}, RecordRequest.of(spikes=[names["H"], names["O"]]))
    return {"h": res.spikes[names["H"]], "out": res.spikes[names["O"]]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    np.save(d / WEIGHT_FILE, np.random.default_rng(3).normal(0.9, 0.1, (20, 3)))
    return d


@pytest.fixture(scope="module")
def reference(folder) -> dict[str, np.ndarray]:
    spikes = simulate(folder, PLAIN)
    assert spikes["h"].sum() > 10 and spikes["out"].sum() > 0  # the comparison means something
    return spikes


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_keyword_names_simulate_like_plain_names(folder, reference, kind):
    names = HOSTILE[kind]
    assert [d for d in check_source(fill(names), str(folder / "x.snn")) if d.severity == "error"] == []
    spikes = simulate(folder, names)
    np.testing.assert_array_equal(spikes["h"], reference["h"])
    np.testing.assert_array_equal(spikes["out"], reference["out"])


@pytest.mark.parametrize(
    "key, name, code",
    [
        ("S", "t", "E-RESERVED"),
        ("P1", "dt", "E-RESERVED"),
        ("S2", "w", "E-RESERVED"),
        ("P2", "exp", "E-SHADOW"),
        ("S", "sin", "E-SHADOW"),
        ("H", "x", "E-DUPLICATE"),
        # words of the .snn language and reserved equation names outside equations: accepted
        ("S", "if", None),
        ("P1", "neuron", None),
        ("P3", "when", None),
        ("IN", "t", None),
        ("O", "dt", None),
    ],
)
def test_reserved_names_are_rejected_or_work(folder, reference, key, name, code):
    names = {**PLAIN, key: name}
    errors = [d for d in check_source(fill(names), str(folder / "r.snn")) if d.severity == "error"]
    if code is None:
        assert errors == []
        spikes = simulate(folder, names)
        np.testing.assert_array_equal(spikes["h"], reference["h"])
        np.testing.assert_array_equal(spikes["out"], reference["out"])
        return
    assert errors and all(d.message for d in errors)
    assert errors[0].code == code and f"'{name}'" in errors[0].message


@pytest.mark.parametrize(
    "filename",
    [
        'quote"d.npy',
        "back\\slash.npy",
        "new\nline.npy",
        "sp ace'apos$(touch pwned).npy",
        "percent%s%d{}.npy",
    ],
)
def test_weight_paths_with_quotes_backslashes_newlines(folder, reference, filename):
    (folder / filename).write_bytes((folder / WEIGHT_FILE).read_bytes())
    escaped = filename.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    spikes = simulate(folder, PLAIN, escaped)
    np.testing.assert_array_equal(spikes["out"], reference["out"])
    assert not (folder / "pwned").exists() and not Path("pwned").exists()


def test_unknown_escape_and_unterminated_string_are_diagnostics(folder):
    for bad in ('w\\q.npy"', 'w.npy\n"'):
        errors = [d for d in check_source(fill(PLAIN, bad), str(folder / "e.snn")) if d.severity == "error"]
        assert errors and errors[0].code != "E-INTERNAL"


def test_pickled_weight_file_is_refused_not_unpickled(folder):
    marker = folder / "unpickled"
    np.save(folder / "evil.npy", np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
    src = folder / "evil.snn"
    src.write_text(fill(PLAIN, "evil.npy"), encoding="utf-8")
    with pytest.raises(DiagnosticError) as info:
        compile_network(src, batch_size=1, dt=0.5, duration=5.0)
    assert info.value.diagnostics[0].code == "E-WEIGHT-FILE"
    assert not marker.exists()


def test_pickled_npz_dataset_is_refused(folder):
    from snnc.runtime.datasets.registry import DatasetError, load_dataset

    marker = folder / "unpickled-data"
    odd = folder / 'da"ta\\set\n.npz'
    np.savez(odd, times=np.array([_Boom(str(marker))], dtype=object), ids=np.array([0]))
    with pytest.raises(DatasetError):
        load_dataset("npz", {"path": str(odd)})
    assert not marker.exists()


class _Boom:
    """Unpickling this creates a marker file: proof that a loader ran pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


_FORBIDDEN = [
    (re.compile(r"allow_pickle\s*=\s*True"), "allow_pickle=True"),
    (re.compile(r"^\s*(import|from)\s+(c?pickle|dill|marshal|shelve)\b", re.M), "pickle import"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"(?<![\w.])eval\("), "eval("),
    (re.compile(r"(?<![\w.])exec\("), "exec("),
    (re.compile(r"\bnp\.load\((?![^)]*allow_pickle=False)"), "np.load without allow_pickle=False"),
]


def test_package_never_unpickles_or_evaluates_data():
    offenders = []
    files = [p for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 30
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern, what in _FORBIDDEN:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert offenders == []


@pytest.mark.parametrize("name", ["trial", "chunks", "helper"])
def test_names_that_spell_the_c_printers_own_functions_train_like_plain_ones(tmp_path, name):
    """The C printer adds functions beside the phases (`snnc_<phase>`): the team's, and one per
    entry for a trial. An output population named `trial` made the loss phase `snnc_loss_trial`,
    the name the loss entry's trial function had (a C compile error); those names now begin with
    `snnc__`, which no phase can. Forward pass and gradients must equal the plain network's."""
    plain_text = (ROOT / "examples" / "yinyang_eventprop.snn").read_text(encoding="utf-8")
    renamed_text = re.sub(r"\bout\b", name, plain_text)
    assert renamed_text != plain_text
    results = []
    for text, out in ((plain_text, "out"), (renamed_text, name)):
        src = tmp_path / f"{out}.snn"
        src.write_text(text, encoding="utf-8")
        net = compile_network(src, batch_size=4, seed=3)
        x = {"x": latency_encode(np.random.default_rng(0).random((4, 5)), 2.0, 27.0)}
        learning = net.artefact.learning
        outcome = learning.forward_backward(x, {out: np.array([0, 1, 2, 1])}, [0, 1, 2, 3], 4.0)
        results.append((outcome.loss[out], {k: g.copy() for k, g in outcome.grads.items()}))
    assert results[0][0] == results[1][0]
    assert len(results[0][1]) == 2
    for key, grad in results[0][1].items():
        np.testing.assert_array_equal(results[1][1][key.replace("out", name)], grad)
