"""The parser: the AST it builds, the files we ship, and that no input makes it crash or hang."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutations import mutated_sources
from snnc.frontend import ast
from snnc.frontend.parser import MAX_NESTING, parse, parse_file
from snnc.frontend.stdlib import std_files, std_models, std_source
from snnc.ir.diagnostics import DiagnosticError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.snn"))

BRIEF_EXAMPLE = """\
use std.{LIF, Exponential}      # also: use std.LIF   use std.*   use "my_models.snn"
neuron MyLIF {
    param tau_mem  = 20 ms
    param v_thresh = 1.0
    param v_reset  = 0.0
    param tau_refrac = 0 ms
    derived alpha = exp(-dt / tau_mem)
    state v = 0.0
    input i_syn
    input i_ext : nA
    dv/dt = (i_syn - v) / tau_mem
    spike when v >= v_thresh
    reset { v = v_reset }
    refractory = tau_refrac            # `refractory = tau_refrac integrating` keeps integrating
    method = euler(sub_steps = 4)      # optional: exact | exponential_euler | euler(sub_steps = N)
}
synapse Exponential {
    param tau = 5 ms
    state i = 0.0
    di/dt = -i / tau
    on_pre { i += w }
    output i
}
synapse Delta {
    state i = 0.0
    on_pre { i += w }
    output impulse i
}
neuron SpikeInput { generator spike_source }
network yinyang {
    input  x   = SpikeInput(4)
    hidden h   = LIF(100, tau_mem = 20 ms)
    output out = LeakyIntegrate(3, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.1, weight = Uniform(low = -0.1, high = 0.1), delay = 1 ms), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1))
}
train yinyang {
    algorithm  = eventprop(max_spikes = 500)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.003, beta2 = 0.99)
    data       = yinyang(train = 5000, test = 1000, t_min = 2 ms, t_max = 27 ms)
    dt         = 0.05 ms
    duration   = 30 ms
    batch_size = 32
    epochs     = 50
    augment    = (shift(max = 40), blend(n = 2))
}
"""


def expr(text: str) -> ast.Expr:
    """Parse one expression as a training setting's value."""
    [train] = parse(f"train n {{ x = {text} }}").items
    return train.settings[0].value


def shape(e) -> object:
    """A span-free view of an expression, so tests can state structure compactly."""
    if isinstance(e, ast.Number):
        return (e.value, e.unit) if e.unit else e.value
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.String | ast.Bool):
        return e.value
    if isinstance(e, ast.UnaryOp):
        return (e.op, shape(e.operand))
    if isinstance(e, ast.BinOp | ast.Compare | ast.BoolOp):
        return (e.op, shape(e.left), shape(e.right))
    if isinstance(e, ast.Attribute):
        return (".", shape(e.value), e.attr)
    if isinstance(e, ast.Call):
        return (
            "call",
            e.func,
            tuple(shape(a) for a in e.args),
            tuple((k.name, shape(k.value)) for k in e.kwargs),
        )
    if isinstance(e, ast.Tuple):
        return ("tuple", *(shape(i) for i in e.items))
    raise AssertionError(f"unexpected node {e!r}")


# --------------------------------------------------------------------------------------------------
# The AST
# --------------------------------------------------------------------------------------------------


def test_brief_example_builds_the_expected_ast():
    module = parse(BRIEF_EXAMPLE, "brief.snn")
    assert module.path == "brief.snn"
    kinds = [type(item).__name__ for item in module.items]
    assert kinds == [
        "UseDecl",
        "ModelDecl",
        "ModelDecl",
        "ModelDecl",
        "ModelDecl",
        "NetworkDecl",
        "TrainDecl",
    ]
    use, lif, exp_syn, delta, spike_input, net, train = module.items
    assert (use.module, use.names) == ("std", ("LIF", "Exponential"))

    assert (lif.kind, lif.name) == ("neuron", "MyLIF")
    body = {type(s).__name__: s for s in lif.body}
    assert [type(s).__name__ for s in lif.body].count("ParamDecl") == 4
    assert shape(body["DerivedDecl"].value) == ("call", "exp", (("/", ("-", "dt"), "tau_mem"),), ())
    assert body["StateDecl"] == ast.StateDecl("v", body["StateDecl"].value, body["StateDecl"].span)
    inputs = [s for s in lif.body if isinstance(s, ast.InputDecl)]
    assert [(i.name, i.unit) for i in inputs] == [("i_syn", None), ("i_ext", "nA")]
    assert body["OdeDecl"].state == "v"
    assert shape(body["OdeDecl"].rhs) == ("/", ("-", "i_syn", "v"), "tau_mem")
    assert shape(body["SpikeDecl"].condition) == (">=", "v", "v_thresh")
    [reset] = body["ResetDecl"].body
    assert (reset.target, reset.op, shape(reset.value)) == ("v", "=", "v_reset")
    assert shape(body["RefractoryDecl"].period) == "tau_refrac" and not body["RefractoryDecl"].integrates
    assert body["MethodDecl"].method == "euler"
    assert [(k.name, shape(k.value)) for k in body["MethodDecl"].kwargs] == [("sub_steps", 4.0)]

    assert exp_syn.kind == "synapse"
    [on_pre] = [s for s in exp_syn.body if isinstance(s, ast.OnPreDecl)]
    assert [(a.target, a.op, shape(a.value)) for a in on_pre.body] == [("i", "+=", "w")]
    assert [(s.name, s.impulse) for s in exp_syn.body if isinstance(s, ast.OutputDecl)] == [("i", False)]
    assert [(s.name, s.impulse) for s in delta.body if isinstance(s, ast.OutputDecl)] == [("i", True)]
    assert spike_input.body == (ast.GeneratorDecl("spike_source", spike_input.body[0].span),)

    assert [(p.role, p.name, p.model.func) for p in net.populations] == [
        ("input", "x", "SpikeInput"),
        ("hidden", "h", "LIF"),
        ("output", "out", "LeakyIntegrate"),
    ]
    assert shape(net.populations[1].model) == ("call", "LIF", (100.0,), (("tau_mem", (20.0, "ms")),))
    assert [(c.pre, c.post, c.connectivity.func, c.synapse and c.synapse.func) for c in net.connections] == [
        ("x", "h", "Dense", "Exponential"),
        ("h", "h", "Sparse", "Exponential"),
        ("h", "out", "Dense", None),
    ]
    sparse = net.connections[1].connectivity
    assert shape(sparse.kwargs[1].value) == ("call", "Uniform", (), (("low", ("-", 0.1)), ("high", 0.1)))
    assert shape(sparse.kwargs[2].value) == (1.0, "ms")

    settings_ = {s.key: s.value for s in train.settings}
    assert train.network == "yinyang"
    assert list(settings_) == [
        "algorithm", "loss", "optimizer", "data", "dt", "duration", "batch_size", "epochs", "augment",
    ]  # fmt: skip
    assert shape(settings_["dt"]) == (0.05, "ms")
    assert shape(settings_["augment"]) == (
        "tuple",
        ("call", "shift", (), (("max", 40.0),)),
        ("call", "blend", (), (("n", 2.0),)),
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-x^2", ("-", ("^", "x", 2.0))),
        ("-x**2", ("-", ("^", "x", 2.0))),
        ("a^b^c", ("^", "a", ("^", "b", "c"))),
        ("2^-1", ("^", 2.0, ("-", 1.0))),
        ("a - b - c", ("-", ("-", "a", "b"), "c")),
        ("a + b * c / d", ("+", "a", ("/", ("*", "b", "c"), "d"))),
        ("(a + b) * c", ("*", ("+", "a", "b"), "c")),
        ("a < b and not c or d", ("or", ("and", ("<", "a", "b"), ("not", "c")), "d")),
        ("v >= v_thresh + beta * a", (">=", "v", ("+", "v_thresh", ("*", "beta", "a")))),
        ("x != 1e-3", ("!=", "x", 1e-3)),
        ("20 ms", (20.0, "ms")),
        ("20ms", (20.0, "ms")),
        ("1.5e3 Hz", (1500.0, "Hz")),
        ("-2 ms", ("-", (2.0, "ms"))),
        ("+.5", ("+", 0.5)),
        ("std.LIF", (".", "std", "LIF")),
        ("f()", ("call", "f", (), ())),
        ("a.b(1, k = 2)", ("call", "a.b", (1.0,), (("k", 2.0),))),
        ("(1,)", ("tuple", 1.0)),
        ("()", ("tuple",)),
        ("(28, 28, 1)", ("tuple", 28.0, 28.0, 1.0)),
        ("[1, 2,]", ("tuple", 1.0, 2.0)),
        ("true", True),
        ("false", False),
        ('"a\\"b\\n"', 'a"b\n'),
    ],
)
def test_expressions(text, expected):
    assert shape(expr(text)) == expected


def test_number_literal_kinds():
    assert expr("3").is_int and not expr("3.0").is_int and not expr("3e2").is_int


def test_spans_are_one_based_with_exclusive_end():
    [model] = parse("\n  neuron N {\n    param tau = 20 ms\n  }", "f.snn").items
    assert model.span == ast.ModelDecl("neuron", "N", model.body, model.span).span
    assert (model.span.line, model.span.col, model.span.end_line, model.span.end_col) == (2, 3, 4, 4)
    assert (model.name_span.line, model.name_span.col, model.name_span.end_col) == (2, 10, 11)
    [param] = model.body
    assert (param.span.line, param.span.col, param.span.end_col) == (3, 5, 22)
    assert (param.value.span.col, param.value.span.end_col) == (17, 22)
    assert param.span.file == "f.snn"


def test_layout_newlines_semicolons_comments():
    text = (
        "# header\r\n\r\n"
        "neuron N { param a = 1; param b = f(1,\n   2,   # inside a call\n   3)\n\n\n"
        "  state v ;; input i\n  reset {\n v = 0; v += 1 }\n}\n"
        "use std.*"
    )
    neuron, use = parse(text).items
    assert [type(s).__name__ for s in neuron.body] == [
        "ParamDecl",
        "ParamDecl",
        "StateDecl",
        "InputDecl",
        "ResetDecl",
    ]
    assert shape(neuron.body[1].value) == ("call", "f", (1.0, 2.0, 3.0), ())
    assert neuron.body[2].value is None
    assert [a.op for a in neuron.body[4].body] == ["=", "+="]
    assert (use.module, use.names) == ("std", None)


def test_use_forms():
    items = parse('use std.LIF\nuse std.*\nuse "my_models.snn"\nuse std.{\n  LIF,\n  ALIF,\n}\nuse lib').items
    assert [(u.module, u.names) for u in items] == [
        ("std", ("LIF",)),
        ("std", None),
        ("my_models.snn", None),
        ("std", ("LIF", "ALIF")),
        ("lib", None),
    ]


def test_model_statement_variants():
    [model] = parse(
        "neuron N {\n refractory = 2 ms integrating\n method = exact\n dvar / dt = -var\n output impulse x\n}"
    ).items
    refr, method, ode, out = model.body
    assert shape(refr.period) == (2.0, "ms") and refr.integrates
    assert (method.method, method.kwargs) == ("exact", ())
    assert ode.state == "var" and shape(ode.rhs) == ("-", "var")
    assert out.impulse


def test_keywords_are_names_where_no_keyword_fits():
    [train] = parse("train n { input = 1; output = state }").items
    assert [(s.key, shape(s.value)) for s in train.settings] == [("input", 1.0), ("output", "state")]


def test_population_and_connection_without_arguments():
    [net] = parse("network n {\n hidden h = std.LIF\n h -> h : OneToOne\n}").items
    assert (net.populations[0].model.func, net.populations[0].model.args) == ("std.LIF", ())
    assert net.connections[0].connectivity.func == "OneToOne" and net.connections[0].synapse is None
    assert net.connections[0].pre_span.col == 2 and net.connections[0].post_span.col == 7


def test_empty_and_blank_files_are_empty_modules():
    for text in ("", "\n\n", "# only a comment", "  ;;\n  # c\n"):
        assert parse(text, "e.snn") == ast.Module((), "e.snn")


def test_byte_order_mark_is_ignored():
    [model] = parse("\ufeffneuron N { }").items
    assert model.name == "N" and model.span.col == 2


# --------------------------------------------------------------------------------------------------
# Shipped files: examples and the standard library
# --------------------------------------------------------------------------------------------------


def _check_spans_point_at_source(module: ast.Module, text: str) -> None:
    """Round trip through the source: each declaration's span and name span slice out its text."""
    lines = text.splitlines()

    def cut(span) -> str:
        assert span.line == span.end_line, span
        return lines[span.line - 1][span.col - 1 : span.end_col - 1]

    for item in module.items:
        if isinstance(item, ast.ModelDecl):
            assert cut(item.name_span) == item.name
            for stmt in item.body:
                first = lines[stmt.span.line - 1][stmt.span.col - 1 :]
                if isinstance(stmt, ast.ParamDecl | ast.StateDecl | ast.DerivedDecl):
                    assert re.match(rf"(param|state|derived)\s+{stmt.name}\b", first), first
                if isinstance(stmt, ast.OdeDecl):
                    assert re.match(rf"d{stmt.state}\s*/\s*dt", first), first
        if isinstance(item, ast.NetworkDecl):
            assert cut(item.name_span) == item.name
            for pop in item.populations:
                assert cut(pop.name_span) == pop.name
                assert cut(pop.model.func_span) == pop.model.func
            for conn in item.connections:
                assert (cut(conn.pre_span), cut(conn.post_span)) == (conn.pre, conn.post)
        if isinstance(item, ast.TrainDecl):
            assert cut(item.name_span) == item.network
            for setting in item.settings:
                assert lines[setting.span.line - 1][setting.span.col - 1 :].startswith(setting.key)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse(path):
    module = parse_file(path)
    text = path.read_text(encoding="utf-8")
    _check_spans_point_at_source(module, text)
    kinds = [type(i).__name__ for i in module.items]
    assert kinds.count("NetworkDecl") == 1 and kinds.count("TrainDecl") == 1
    [net] = [i for i in module.items if isinstance(i, ast.NetworkDecl)]
    [train] = [i for i in module.items if isinstance(i, ast.TrainDecl)]
    assert train.network == net.name
    assert [p.role for p in net.populations] == ["input", "hidden", "output"]
    assert {"algorithm", "loss", "data", "dt", "duration"} <= {s.key for s in train.settings}


def test_example_contents_match_their_papers():
    def find(name):
        module = parse_file(ROOT / "examples" / name)
        net = next(i for i in module.items if isinstance(i, ast.NetworkDecl))
        train = next(i for i in module.items if isinstance(i, ast.TrainDecl))
        return net, {s.key: shape(s.value) for s in train.settings}

    net, cfg = find("yinyang_eventprop.snn")
    assert [p.model.args[0].value for p in net.populations] == [5, 100, 3]  # 4 features + a bias spike
    assert cfg["dt"] == (0.1, "ms") and cfg["epochs"] == 40 and cfg["seed"] == 1
    net, cfg = find("shd_eventprop.snn")
    assert [p.model.args[0].value for p in net.populations] == [700, 256, 20]
    assert ("h", "h") in [(c.pre, c.post) for c in net.connections]
    assert cfg["data"] == ("call", "shd", (), (("path", "shd"),))
    net, cfg = find("eprop_digits.snn")
    assert [p.model.args[0].value for p in net.populations] == [64, 100, 10]
    assert cfg["algorithm"][1] == "eprop"
    net, cfg = find("eprop_pattern.snn")
    assert [p.model.args[0].value for p in net.populations] == [20, 256, 3]
    assert cfg["loss"] == "mse" and cfg["duration"] == (1000.0, "ms")


def test_std_library_parses_and_lists_its_models():
    files = std_files()
    assert files, "std/*.snn must ship with the package"
    for text, path in files.values():
        _check_spans_point_at_source(parse(text, path), text)
    assert set(std_models()) == {
        "LIF", "ALIF", "LeakyIntegrate", "LI", "IntegrateFire", "SpikeInput", "PoissonInput", "Delta", "Exponential",
    }  # fmt: skip
    text, path = std_source("LIF")
    assert Path(path).name == "lif.snn" and "neuron LIF" in text
    with pytest.raises(KeyError):
        std_source("NoSuchModel")


def _std_model(name: str) -> ast.ModelDecl:
    text, path = std_source(name)
    return next(i for i in parse(text, path).items if isinstance(i, ast.ModelDecl) and i.name == name)


def test_std_defaults_follow_mlgenn():
    def params(name):
        return {s.name: shape(s.value) for s in _std_model(name).body if isinstance(s, ast.ParamDecl)}

    assert params("LIF") == {
        "tau_mem": (20.0, "ms"), "v_thresh": 1.0, "v_reset": 0.0, "tau_refrac": (0.0, "ms"), "relative_reset": False,
    }  # fmt: skip
    alif = params("ALIF")
    assert alif["tau_adapt"] == (2000.0, "ms") and alif["beta"] == 0.0174
    assert params("Exponential") == {"tau": (5.0, "ms")}
    assert params("LeakyIntegrate") == params("LI") == {"tau_mem": (20.0, "ms"), "bias": 0.0}
    alif_model = _std_model("ALIF")
    [spike] = [s for s in alif_model.body if isinstance(s, ast.SpikeDecl)]
    assert shape(spike.condition) == (">=", "v", ("+", "v_thresh", ("*", "beta", "a")))
    assert not any(isinstance(s, ast.SpikeDecl) for s in _std_model("LI").body)
    assert _std_model("PoissonInput").body[0].kind == "poisson"


# --------------------------------------------------------------------------------------------------
# Robustness: every input ends in a module or a DiagnosticError, quickly
# --------------------------------------------------------------------------------------------------


def _outcome(text: str):
    try:
        return parse(text)
    except DiagnosticError as err:
        for diag in err.diagnostics:
            assert diag.code != "E-INTERNAL", diag
            assert diag.span is not None and diag.span.line >= 1 and diag.span.col >= 1, diag
        return err


PATHOLOGICAL = {
    "garbage": "}{)(][ -> :: == @@ \\ ` ~ $ %",
    "binary": bytes(range(256)).decode("latin-1") * 8,
    "nested_parentheses": "train n { x = " + "(" * 10_000 + "1" + ")" * 10_000 + " }",
    "nested_unclosed": "(" * 10_000,
    "nested_braces": "neuron N " + "{" * 10_000,
    "unary_chain": "train n { x = " + "-" * 10_000 + "1 }",
    "not_chain": "train n { x = " + "not " * 10_000 + "1 }",
    "power_chain": "train n { x = " + "a ^ " * 10_000 + "1 }",
    "long_sum": "train n { x = " + "1 + " * 10_000 + "1 }",
    "ten_megabytes_valid": ("neuron N { param a = 1 }\n" * 420_000),
    "ten_megabytes_garbage": "@" * 10_000_000,
    "long_line": "train n { x = " + "a" * 1_000_000 + " }",
    "many_lines": "\n" * 200_000,
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_inputs_end_quickly_with_a_diagnostic_or_a_module(name):
    text = PATHOLOGICAL[name]
    start = time.process_time()  # CPU time: a busy machine stretches wall time, not this
    result = _outcome(text)
    assert time.process_time() - start < 2.0
    if name.startswith("nested_paren") or name.endswith("_chain") or name == "long_sum":
        assert isinstance(result, DiagnosticError) and result.diagnostics[0].code == "E-NESTING"
    if name.startswith("ten_megabytes"):
        assert isinstance(result, DiagnosticError) and result.diagnostics[0].code == "E-TOO-LARGE"


def test_nesting_limit_is_exact():
    ok = "train n { x = " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING + " }"
    assert shape(parse(ok).items[0].settings[0].value) == 1.0
    too_deep = "train n { x = " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1) + " }"
    with pytest.raises(DiagnosticError):
        parse(too_deep)


def test_binary_file_reports_position(tmp_path):
    path = tmp_path / "model.snn"
    path.write_bytes(b"neuron N {\n  state v = 0\x00\n}")
    with pytest.raises(DiagnosticError) as info:
        parse_file(path)
    diag = info.value.diagnostics[0]
    assert diag.code == "E-ENCODING" and (diag.span.line, diag.span.col) == (2, 14)


# -- mutation fuzzing: delete, duplicate, swap tokens and insert characters in valid sources ---------

_SOURCES = (
    [BRIEF_EXAMPLE] + [p.read_text(encoding="utf-8") for p in EXAMPLES] + [t for t, _ in std_files().values()]
)


@settings(max_examples=300, deadline=None)
@given(mutated_sources(_SOURCES))
def test_mutated_sources_never_crash(text):
    result = _outcome(text)
    if isinstance(result, ast.Module):
        assert all(item.span.file == "<string>" for item in result.items)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    _outcome(text)
