"""Hand-built AST nodes for lowering tests that must not depend on the parser."""

from __future__ import annotations

from snnc.frontend import ast
from snnc.ir.diagnostics import Span

_line = [0]


def sp() -> Span:
    """A fresh span on its own line, so tests can tell which node a diagnostic points at."""
    _line[0] += 1
    return Span("t.snn", _line[0], 1)


def num(v: float, unit: str | None = None) -> ast.Number:
    return ast.Number(float(v), unit, sp(), is_int=float(v).is_integer() and unit is None)


def n(id_: str) -> ast.Name:
    return ast.Name(id_, sp())


def op(o: str, a, b):
    if o in ("<", "<=", ">", ">=", "==", "!="):
        return ast.Compare(o, a, b, sp())
    return ast.BinOp(o, a, b, sp())


def call(f: str, *args, **kw) -> ast.Call:
    return ast.Call(f, tuple(args), tuple(ast.Keyword(k, v, sp()) for k, v in kw.items()), sp(), sp())


def param(name, v):
    return ast.ParamDecl(name, v, sp())


def state(name, v):
    return ast.StateDecl(name, v, sp())


def inp(name, unit=None):
    return ast.InputDecl(name, unit, sp())


def ode(s, rhs):
    return ast.OdeDecl(s, rhs, sp())


def model(kind, name, *body):
    return ast.ModelDecl(kind, name, tuple(body), sp(), sp())


def lif(name="LIF"):
    return model(
        "neuron",
        name,
        param("tau_mem", num(20, "ms")),
        param("v_thresh", num(1.0)),
        state("v", num(0.0)),
        inp("i_syn"),
        ode("v", op("/", op("-", n("i_syn"), n("v")), n("tau_mem"))),
        ast.SpikeDecl(op(">=", n("v"), n("v_thresh")), sp()),
        ast.ResetDecl((ast.AssignStmt("v", "=", num(0.0), sp()),), sp()),
    )


def exp_syn(name="Exponential"):
    return model(
        "synapse",
        name,
        param("tau", num(5, "ms")),
        state("i", num(0.0)),
        ode("i", op("/", ast.UnaryOp("-", n("i"), sp()), n("tau"))),
        ast.OnPreDecl((ast.AssignStmt("i", "+=", n("w"), sp()),), sp()),
        ast.OutputDecl("i", False, sp()),
    )


def spike_input(name="SpikeInput"):
    return model("neuron", name, ast.GeneratorDecl("spike_source", sp()))


def pop(role, name, model_call):
    return ast.PopulationDecl(role, name, model_call, sp(), sp())


def conn(pre, post, c, s=None):
    return ast.ConnectionDecl(pre, post, c, s, sp(), sp(), sp())


def network(name, pops, conns):
    return ast.NetworkDecl(name, tuple(pops), tuple(conns), sp(), sp())


def train(net, **settings):
    return ast.TrainDecl(net, tuple(ast.Setting(k, v, sp()) for k, v in settings.items()), sp(), sp())


def module(*items, path="t.snn"):
    return ast.Module(tuple(items), path)
