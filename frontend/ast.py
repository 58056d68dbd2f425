"""The `.snn` abstract syntax tree: frozen dataclasses, one per grammar construct, each with a span.

The parser (`parser.py`) builds these from the lark tree; lowering (`lower.py`) turns them into the
Model IR. Frozen dataclasses give tests `==` and a readable `repr` for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnc.ir.diagnostics import Span

# --------------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A literal, optionally with a unit: `20 ms` is Number(20.0, "ms")."""

    value: float
    unit: str | None
    span: Span
    is_int: bool = False


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Attribute:
    """`a.b`, e.g. a readout naming a state: `readout = avg_var(v)` uses Call, but `std.LIF` is this."""

    value: Expr
    attr: str
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # "-" | "+" | "not"
    operand: Expr
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # "+" | "-" | "*" | "/" | "^" (also "**")
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # "<" | "<=" | ">" | ">=" | "==" | "!="
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """`f(a, b, k = v)`: functions in equations, and constructors everywhere else."""

    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span
    func_span: Span | None = None


@dataclass(frozen=True)
class Tuple:
    items: tuple[Expr, ...]
    span: Span


Expr = Number | String | Bool | Name | Attribute | UnaryOp | BinOp | Compare | BoolOp | Call | Tuple

# --------------------------------------------------------------------------------------------------
# Model bodies
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamDecl:
    name: str
    value: Expr
    span: Span
    name_span: Span | None = field(default=None, compare=False)  # the declared name itself


@dataclass(frozen=True)
class DerivedDecl:
    name: str
    value: Expr
    span: Span
    name_span: Span | None = field(default=None, compare=False)  # the declared name itself


@dataclass(frozen=True)
class StateDecl:
    name: str
    value: Expr | None  # None: "state declared without an initial value" (a check reports it)
    span: Span
    name_span: Span | None = field(default=None, compare=False)  # the declared name itself


@dataclass(frozen=True)
class InputDecl:
    name: str
    unit: str | None
    span: Span
    name_span: Span | None = field(default=None, compare=False)  # the declared name itself


@dataclass(frozen=True)
class OdeDecl:
    state: str
    rhs: Expr
    span: Span


@dataclass(frozen=True)
class AssignStmt:
    target: str
    op: str  # "=" | "+=" | "-=" | "*=" | "/="
    value: Expr
    span: Span


@dataclass(frozen=True)
class SpikeDecl:
    condition: Expr
    span: Span


@dataclass(frozen=True)
class ResetDecl:
    body: tuple[AssignStmt, ...]
    span: Span


@dataclass(frozen=True)
class OnPreDecl:
    body: tuple[AssignStmt, ...]
    span: Span


@dataclass(frozen=True)
class OutputDecl:
    name: str
    impulse: bool
    span: Span


@dataclass(frozen=True)
class RefractoryDecl:
    period: Expr
    integrates: bool
    span: Span


@dataclass(frozen=True)
class MethodDecl:
    method: str
    kwargs: tuple[Keyword, ...]
    span: Span


@dataclass(frozen=True)
class GeneratorDecl:
    """Input models only: `generator spike_source` or `generator poisson`."""

    kind: str
    span: Span


ModelStmt = (
    ParamDecl
    | DerivedDecl
    | StateDecl
    | InputDecl
    | OdeDecl
    | SpikeDecl
    | ResetDecl
    | OnPreDecl
    | OutputDecl
    | RefractoryDecl
    | MethodDecl
    | GeneratorDecl
)


@dataclass(frozen=True)
class ModelDecl:
    kind: str  # "neuron" | "synapse"
    name: str
    body: tuple[ModelStmt, ...]
    span: Span
    name_span: Span | None = None


# --------------------------------------------------------------------------------------------------
# Networks, training, imports
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PopulationDecl:
    role: str  # "input" | "hidden" | "output"
    name: str
    model: Call  # `LIF(100, tau_mem = 10 ms, readout = avg_var)`
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class ConnectionDecl:
    pre: str
    post: str
    connectivity: Call  # `Dense(weight = Normal(mean = 0, sd = 1), delay = 1 ms)`
    synapse: Call | None  # `Exponential(tau = 5 ms)`; None means the default synapse
    span: Span
    pre_span: Span | None = None
    post_span: Span | None = None


@dataclass(frozen=True)
class NetworkDecl:
    name: str
    populations: tuple[PopulationDecl, ...]
    connections: tuple[ConnectionDecl, ...]
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class Setting:
    key: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class TrainDecl:
    network: str
    settings: tuple[Setting, ...]
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class UseDecl:
    """`use std.{LIF, Exponential}`, `use std.LIF`, `use std.*`, or `use "my_models.snn"`."""

    module: str  # "std" or a file path
    names: tuple[str, ...] | None  # None means everything
    span: Span


Item = UseDecl | ModelDecl | NetworkDecl | TrainDecl


@dataclass(frozen=True)
class Module:
    items: tuple[Item, ...]
    path: str
