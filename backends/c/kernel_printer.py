"""Print a kernel (`snnc.ir.kernel`) as one C translation unit and the array list of its manifest.

Python decides, `templates/kernel.c.j2` lays out (STYLE.md #10): statements become C lines here, the
fixed C forms of loops over arrivals, spike emission and input generators are the template's macros.
The printer knows C, not algorithms: it never learns what a phase is for.

Names: a kernel array keeps its name (a fixed prefix, then `__`-joined IR names), hoisted into a
local pointer of the same name in each phase; indices print as `snnc_<name>`; locals as `u_<name>`
(leading underscores dropped), made unique per phase, so no C keyword or libc name can be hit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import sympy
from snnc.backends.templates import template_env
from snnc.ir.kernel import (
    READ_ONLY,
    Array,
    Arrivals,
    Elements,
    EmitSpikes,
    Entry,
    Events,
    Generate,
    If,
    Index,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    PhaseKind,
    PostSynapses,
    Role,
    Row,
    Slots,
    Spikes,
    Stmt,
    Store,
    Synapses,
    Trials,
    walk,
)
from snnc.ir.names import param_key

from .manifest import ABI_VERSION
from .printer import SnncCPrinter, UnprintableExprError, literal

TEMPLATES = Path(__file__).parent / "templates"
CTYPES = {"double": "double", "int32": "int32_t", "uint32": "uint32_t", "int64": "int64_t"}
INT_DTYPES = ("int32", "uint32", "int64")
#: spiking rows summed per pass over a dense projection's targets (additive delivery)
DENSE_UNROLL = 4
#: the old manifest vocabulary the C loader reads (backends/c/loader.py), from the kernel's roles
MANIFEST_KIND = {
    Role.WEIGHT: "weight",
    Role.PARAM: "weight",  # a trained per-neuron param: the runtime trains it like a weight
    Role.CONNECTIVITY: "connectivity",
    Role.READOUT: "readout",
    Role.INPUT: "input",
    Role.SPIKE_LIST: "ring",
    Role.RECORD: "record",
    Role.COUNTER: "internal",
    Role.SCRATCH: "internal",
    Role.OPTIMISER: "optimiser",  # bound by the loader to the runtime optimiser's buffers
    Role.LOSS: "loss",
}


def _env() -> jinja2.Environment:
    return template_env(TEMPLATES)


class KernelExprPrinter(SnncCPrinter):
    """Expressions of one phase: locals, indices and array elements know their C text. The GeNN
    printer (backends/genn/kernel_printer.py) subclasses it for GeNN's names of the same things."""

    def __init__(self, kernel: Kernel, precision: str) -> None:
        super().__init__({}, precision)
        self.arrays = {a.name: a for a in kernel.arrays}
        self.locals: dict[Local, str] = {}
        self.int_locals: set[Local] = set()
        self.overrides: dict[sympy.Basic, str] = {}  # element -> text (unrolled delivery)
        self.int_mode = False
        self.dims_used: set[str] = set()  # arrays read for a symbolic dimension

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if isinstance(expr, Index):
            return f"snnc_{expr.name}" if self.int_mode else f"(scalar)snnc_{expr.name}"
        if isinstance(expr, Local):
            return self.locals[expr]
        return super()._print_Symbol(expr)

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(int(expr)) if self.int_mode else super()._print_Integer(expr)

    def _print_Relational(self, expr: sympy.Basic) -> str:
        """A comparison of integers stays in integers (no int-to-float conversion per element)."""
        if self.is_int(expr.lhs) and self.is_int(expr.rhs):
            saved, self.int_mode = self.int_mode, True
            try:
                return super()._print_Relational(expr)
            finally:
                self.int_mode = saved
        return super()._print_Relational(expr)

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        if expr in self.overrides:
            return self.overrides[expr]
        return f"{expr.base.label}[{self.offset(expr)}]"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        (value, cond), *rest = expr.args
        if cond == sympy.true or not rest:
            return self._print(value)
        return f"({self._print(cond)} ? {self._print(value)} : {self._print(sympy.Piecewise(*rest))})"

    def _print_Infinity(self, expr: sympy.Basic) -> str:
        return "INFINITY"

    def _print_NegativeInfinity(self, expr: sympy.Basic) -> str:
        return "(-INFINITY)"

    def offset(self, ref: sympy.Indexed) -> str:
        """Row-major offset of an element; one index is already a flat offset."""
        array = self.arrays[str(ref.base.label)]
        indices = [self.index(i) for i in ref.indices]
        if len(indices) == 1:
            return indices[0]
        text = indices[0]
        for dim, idx in zip(array.shape[1:], indices[1:], strict=True):
            text = f"({text}) * {self.dim(dim, array.owner)} + {idx}"
        return text

    def dim(self, dim: int | str, owner: str) -> str:
        """A dimension's C value: sizes known when the artefact loads are read from their arrays."""
        if dim == "steps":
            return "snnc_K"
        if dim in ("events", "nnz"):
            var = "capacity" if dim == "events" else "row_ptr"
            array = next(a for a in self.arrays.values() if a.owner == owner and a.var == var)
            self.dims_used.add(array.name)
            if dim == "events":
                return f"{array.name}[0]"
            return f"{array.name}[{array.shape[0] - 1}]"  # nnz: the last row pointer
        return str(dim)

    def index(self, expr: sympy.Expr) -> str:
        saved, self.int_mode = self.int_mode, True
        try:
            return self._print(expr)
        finally:
            self.int_mode = saved

    def is_int(self, expr: sympy.Basic) -> bool:
        if isinstance(expr, sympy.Integer):
            return True
        if isinstance(expr, Local):
            return expr in self.int_locals
        if isinstance(expr, Index):
            return True
        if isinstance(expr, sympy.Indexed):
            return self.arrays[str(expr.base.label)].dtype in INT_DTYPES
        if isinstance(expr, sympy.Piecewise):
            return all(self.is_int(v) for v, _ in expr.args)
        if isinstance(expr, (sympy.Add, sympy.Mul, sympy.Mod)):
            return all(self.is_int(a) for a in expr.args)
        return False

    def value(self, expr: sympy.Basic, as_int: bool) -> str:
        saved, self.int_mode = self.int_mode, as_int
        try:
            return self._print(expr)
        finally:
            self.int_mode = saved


def unique_local(prefix: str, local: Local, taken: set[str]) -> str:
    """`prefix` + the local's name without leading underscores, numbered until it is not in `taken`
    (which it joins): a generated local never meets a keyword, a library name or another local."""
    base = prefix + local.name.lstrip("_")
    name, n = base, 1
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


@dataclass
class _Phase:
    """One phase function: its statements printed, and the arrays it touches."""

    kernel: Kernel
    precision: str

    def __post_init__(self) -> None:
        self.pr = KernelExprPrinter(self.kernel, self.precision)
        self.used: set[str] = set()
        self.taken: set[str] = set()
        self.guarded: set[str] = set()  # optional arrays whose stores an enclosing `if` already guards
        self.sums = 0  # register accumulators made in this phase (`invariant_sums`)
        #: the C type of the phase's non-integer locals: the kernel's scalar, or double in a phase
        #: printed in double precision (a loss and an optimiser step, like the runtime's numpy)
        self.real = "scalar" if self.precision == self.kernel.precision else "double"

    # ------------------------------------------------------------------ names
    def local(self, local: Local) -> str:
        name = unique_local("u_", local, self.taken)
        self.pr.locals[local] = name
        return name

    def touch(self, expr: sympy.Basic) -> None:
        self.used |= {str(r.base.label) for r in expr.atoms(sympy.Indexed)}

    # ------------------------------------------------------------------ statements
    def body(self, body: tuple[Stmt, ...], depth: int) -> list[str]:
        lines: list[str] = []
        for st in body:
            lines += self.stmt(st, depth)
        return lines

    def stmt(self, st: Stmt, depth: int) -> list[str]:
        if not isinstance(st, Let | Store):
            return self.control(st, depth)
        what = f"local '{st.local.name}'" if isinstance(st, Let) else f"store to '{st.target.array}'"
        try:
            return self.assignment(st, depth)
        except UnprintableExprError as e:
            raise e.within(what) from None

    def assignment(self, st: Let | Store, depth: int) -> list[str]:
        """A `Let` (a const local) or a `Store` (an element written)."""
        pad = "    " * depth
        if isinstance(st, Let):
            self.touch(st.expr)
            as_int = self.pr.is_int(st.expr)
            ctype = "int32_t" if as_int else self.real
            text = self.pr.value(st.expr, as_int)
            if as_int:
                self.pr.int_locals.add(st.local)
            note = f"  /* {st.comment} */" if st.comment else ""
            return [f"{pad}const {ctype} {self.local(st.local)} = {text};{note}"]
        if isinstance(st, Store):
            self.touch(st.target)
            self.touch(st.expr)
            target = self.pr.arrays[st.target.array]
            text = self.pr.value(st.expr, target.dtype in INT_DTYPES)
            note = f"  /* {st.comment} */" if st.comment else ""
            line = f"{self.pr._print(st.target)} {st.op} {text};{note}"
            guarded = target.optional and target.name not in self.guarded
            return [f"{pad}if ({target.name}) {line}" if guarded else pad + line]
        raise TypeError(f"not an assignment: {type(st).__name__}")

    def control(self, st: Stmt, depth: int) -> list[str]:
        """Statements that hold others (If, Loop) and the template's macros."""
        pad = "    " * depth
        if isinstance(st, If):
            self.touch(st.cond)
            try:
                cond = self.pr._print(st.cond)
            except UnprintableExprError as e:
                raise e.within("an if's condition") from None
            lines = [f"{pad}if ({cond}) {{", *self.body(st.body, depth + 1)]
            if st.orelse:
                lines += [f"{pad}}} else {{", *self.body(st.orelse, depth + 1)]
            return [*lines, f"{pad}}}"]
        if isinstance(st, Loop):
            return self.loop(st, depth)
        if isinstance(st, EmitSpikes):
            self.used |= {
                st.flag,
                f"sp_{st.population}__ids",
                f"sp_{st.population}__cnt",
                f"rs_{st.population}",
            }
            return self.macro("emit_spikes", depth, self.spike_list(st.population, flag=st.flag))
        if isinstance(st, Generate):
            pop = st.population
            names = (
                [f"in_{pop}__{k}" for k in ("cursor", "end", "times", "ids")] + [f"q_{pop}__last"]
                if st.kind == "spike_source"
                else [f"in_{pop}__rate", "q_example"]
            )
            self.used |= {*names, f"sp_{pop}__ids", f"sp_{pop}__cnt", f"rs_{pop}"}
            return self.macro("generate", depth, {**self.spike_list(pop), "kind": st.kind})
        raise TypeError(f"the C printer cannot print {type(st).__name__}")

    def loop(self, loop: Loop, depth: int) -> list[str]:
        pad = "    " * depth
        space = loop.space
        note = f"  /* {loop.comment} */" if loop.comment else ""
        if isinstance(space, Neurons):
            n = self.kernel.populations[space.population]
            j = f"snnc_{loop.vars['j'].name}"
            head = f"for (int64_t {j} = 0; {j} < {n}; {j}++) {{{note}"
            optional = self.optional_targets(loop.body)
            if optional:  # a recording: skipped as a whole unless the runtime asked for it
                self.guarded |= set(optional)
                inner = self.body(loop.body, depth + 2)
                self.guarded -= set(optional)
                guard = " && ".join(optional)
                return [f"{pad}if ({guard}) {{", f"{pad}    {head}", *inner, f"{pad}    }}", f"{pad}}}"]
            return [pad + head, *self.body(loop.body, depth + 1), f"{pad}}}"]
        if isinstance(space, Slots):
            return self.counted(loop, "r", str(space.count), depth)
        if isinstance(space, Arrivals):
            return self.arrivals(loop, depth)
        if isinstance(space, Synapses):
            return self.synapses_loop(loop, depth)
        if isinstance(space, PostSynapses):
            return self.post_synapses_loop(loop, depth)
        if isinstance(space, Spikes):
            pop = space.population
            self.used |= {f"sp_{pop}__cnt", f"sp_{pop}__ids"}
            self.touch(space.step)
            facts = {
                **self.spike_list(pop),
                "step": self.pr.index(space.step),
                "i": f"snnc_{loop.vars['i'].name}",
                "comment": loop.comment,
            }
            return [
                *self.macro("spikes_open", depth, facts),
                *self.body(loop.body, depth + 2),
                *self.macro("spikes_close", depth, facts),
            ]
        if isinstance(space, Events):
            return self.events(loop, depth)
        if isinstance(space, Row):
            return self.row(loop, depth)
        if isinstance(space, Trials):
            return self.counted(loop, "b", "snnc_B", depth)
        if isinstance(space, Elements):
            array = self.pr.arrays[space.array]
            dims = array.shape[1:] if array.shape and array.shape[0] == "batch" else array.shape
            return self.counted(
                loop, "q", " * ".join(self.pr.dim(d, array.owner) for d in dims) or "1", depth
            )
        raise TypeError(f"the C printer cannot loop over {type(space).__name__}")

    def counted(self, loop: Loop, var: str, bound: str, depth: int) -> list[str]:
        """`for (v = 0; v < bound; v++) { body }`: a loop over a plain range of indices."""
        pad = "    " * depth
        note = f"  /* {loop.comment} */" if loop.comment else ""
        v = f"snnc_{loop.vars[var].name}"
        return [
            f"{pad}for (int64_t {v} = 0; {v} < {bound}; {v}++) {{{note}",
            *self.body(loop.body, depth + 1),
            f"{pad}}}",
        ]

    def events(self, loop: Loop, depth: int) -> list[str]:
        space: Events = loop.space
        by_var = {  # the population's spike list and its capacity
            a.var: a.name
            for a in self.kernel.arrays
            if a.owner == space.population and (a.role == Role.SPIKE_LIST or a.var == "capacity")
        }
        self.used |= {by_var["id"], by_var["step"], by_var["capacity"], space.cursor}
        self.touch(space.step)
        facts = {
            "population": space.population,
            "step": self.pr.index(space.step),
            "ids": by_var["id"],
            "steps": by_var["step"],
            "cap": f"{by_var['capacity']}[0]",
            "cursor": space.cursor,
            "e": f"snnc_{loop.vars['e'].name}",
            "i": f"snnc_{loop.vars['i'].name}",
            "comment": loop.comment,
        }
        return [
            *self.macro("events_open", depth, facts),
            *self.body(loop.prologue, depth + 2),
            *self.macro("events_loop", depth, facts),
            *self.body(loop.body, depth + 3),
            *self.macro("events_close", depth, facts),
        ]

    def row(self, loop: Loop, depth: int) -> list[str]:
        space: Row = loop.space
        info = self.kernel.projections[space.projection]
        window = info.layout == "window"
        if window and (
            {v.name for v in loop.vars.values()} != {"j", "q"} or self.pr.index(space.pre) != "snnc_i"
        ):
            raise NotImplementedError("window rows print their indices as snnc_i, snnc_j, snnc_q")
        if info.layout == "csr":
            self.used |= {f"c_{space.projection}__row_ptr", f"c_{space.projection}__col_idx"}
        self.touch(space.pre)
        facts = {
            "name": space.projection,
            "kind": info.kind,
            "layout": info.layout,
            "pre": self.pr.index(space.pre),
            "num_post": self.kernel.populations[info.post],
            "j": f"snnc_{loop.vars['j'].name}",
            "q": f"snnc_{loop.vars['q'].name}",
            "geo": dict(info.geometry),
            "independent": loop.independent,
        }
        pad = "    " * depth
        sums = self.invariant_sums(loop)
        lines = [f"{pad}scalar {acc} = 0;  /* sums into {self.pr._print(t)} */" for t, acc in sums.items()]
        self.pr.overrides.update(sums)
        try:
            lines += [
                *self.macro("row_open", depth, facts),
                *self.body(loop.body, depth + (5 if window else 1)),
                *self.macro("row_close", depth, facts),
            ]
        finally:
            for target in sums:
                del self.pr.overrides[target]
        return lines + [f"{pad}{self.pr._print(t)} += {acc};" for t, acc in sums.items()]

    def invariant_sums(self, loop: Loop) -> dict[sympy.Basic, str]:
        """`t += x` stores whose element `t` the loop's indices do not move, and which nothing else
        in the loop reads: summed in a register and added once after the loop (a sum kept in memory
        is a load and a store per point, which also stops vectorisation). A local the loop's body
        defines moves with its indices."""
        bound = set(loop.vars.values()) | {st.local for st in walk(loop.body) if isinstance(st, Let)}
        stores = [st for st in loop.body if isinstance(st, Store)]
        out: dict[sympy.Basic, str] = {}
        for st in stores:
            target = st.target
            if st.op != "+=" or target.free_symbols & bound or self.pr.arrays[target.array].dtype != "scalar":
                continue
            others = [x for x in walk(loop.body) if x is not st]
            if any(target.array in {str(r.base.label) for r in _exprs_of(x)} for x in others):
                continue
            self.sums += 1
            out[target] = f"snnc_sum{self.sums}"
        return out

    def synapses_loop(self, loop: Loop, depth: int) -> list[str]:
        """Every synapse (i, j, q) of a projection, pre neuron outermost, in weight-slot order."""
        pad = "    " * depth
        name = loop.space.projection
        info = self.kernel.projections[name]
        n_pre, n_post = self.kernel.populations[info.pre], self.kernel.populations[info.post]
        i, j, q = (f"snnc_{loop.vars[v].name}" for v in ("i", "j", "q"))
        note = f"  /* {loop.comment} */" if loop.comment else ""
        uses_j, uses_q = (self.reads(loop.body, loop.vars[v]) for v in ("j", "q"))
        head = [f"{pad}for (int64_t {i} = 0; {i} < {n_pre}; {i}++) {{{note}"]
        if info.layout == "dense":
            head.append(f"{pad}    for (int64_t {j} = 0; {j} < {n_post}; {j}++) {{")
            head += [f"{pad}        const int64_t {q} = {i} * {n_post} + {j};"] if uses_q else []
        elif info.layout == "csr":
            ptr, col = f"c_{name}__row_ptr", f"c_{name}__col_idx"
            self.used |= {ptr, col}
            head.append(f"{pad}    for (int64_t {q} = {ptr}[{i}]; {q} < {ptr}[{i} + 1]; {q}++) {{")
            head += [f"{pad}        const int64_t {j} = {col}[{q}];"] if uses_j else []
        elif info.layout == "one_to_one":
            head.append(f"{pad}    {{")
            head += [
                f"{pad}        const int64_t {v} = {i};" for v, used in ((j, uses_j), (q, uses_q)) if used
            ]
        else:
            raise NotImplementedError(f"a loop over the synapses of {info.kind} connectivity")
        return [*head, *self.body(loop.body, depth + 2), f"{pad}    }}", f"{pad}}}"]

    def post_synapses_loop(self, loop: Loop, depth: int) -> list[str]:
        """Every synapse (i, j, q) of a CSR projection, post neuron outermost, at position s."""
        pad = "    " * depth
        space: PostSynapses = loop.space
        n_post = self.kernel.populations[self.kernel.projections[space.projection].post]
        i, j, q, s = (f"snnc_{loop.vars[v].name}" for v in ("i", "j", "q", "s"))
        note = f"  /* {loop.comment} */" if loop.comment else ""
        self.used.add(space.ptr)
        head = [
            f"{pad}for (int64_t {j} = 0; {j} < {n_post}; {j}++) {{{note}",
            f"{pad}    for (int64_t {s} = {space.ptr}[{j}]; {s} < {space.ptr}[{j} + 1]; {s}++) {{",
        ]
        for bound, var, array in (("i", i, space.pre), ("q", q, space.slot)):
            if self.reads(loop.body, loop.vars[bound]):
                self.used.add(array)
                head.append(f"{pad}        const int64_t {var} = {array}[{s}];")
        return [*head, *self.body(loop.body, depth + 2), f"{pad}    }}", f"{pad}}}"]

    @staticmethod
    def reads(body: tuple[Stmt, ...], index: Index) -> bool:
        for st in walk(body):
            exprs = [getattr(st, a) for a in ("expr", "target", "cond") if hasattr(st, a)]
            if isinstance(st, Loop) and isinstance(st.space, Spikes):
                exprs.append(st.space.step)
            if any(index in sympy.sympify(e).free_symbols for e in exprs):
                return True
        return False

    def optional_targets(self, body: tuple[Stmt, ...]) -> list[str]:
        stores = [s for s in walk(body) if isinstance(s, Store)]
        names = {s.target.array for s in stores}
        if stores and all(self.pr.arrays[n].optional for n in names):
            return sorted(names)
        return []

    def arrivals(self, loop: Loop, depth: int) -> list[str]:
        space: Arrivals = loop.space
        info = self.kernel.projections[space.projection]

        if {v.name for v in loop.vars.values()} != {"i", "j", "q"}:
            raise NotImplementedError("arrival loops print their indices as snnc_i, snnc_j, snnc_q")
        self.used |= {f"sp_{info.pre}__ids", f"sp_{info.pre}__cnt"}
        if info.layout == "csr":
            self.used |= {f"c_{space.projection}__row_ptr", f"c_{space.projection}__col_idx"}
        p = {
            "name": space.projection,
            "pre": info.pre,
            "kind": info.kind,
            "layout": info.layout,
            "delay": info.delay_steps,
            "pre_slots": self.slots(info.pre),
            "num_pre": self.kernel.populations[info.pre],
            "num_post": self.kernel.populations[info.post],
            "unroll": DENSE_UNROLL,
            "additive": self.additive(loop) if info.layout == "dense" else None,
            "geo": dict(info.geometry),
        }
        lines = self.macro("arrivals_open", depth, p)
        if not p["additive"]:
            lines += self.body(loop.body, depth + (6 if info.layout == "window" else 3))
        return lines + self.macro("arrivals_close", depth, p)

    def additive(self, loop: Loop) -> dict[str, Any] | None:
        """`s[b, j] = s[b, j] + g(w[q])`, g free of state: rows of spiking neurons summed first."""
        if len(loop.body) != 1 or not isinstance(loop.body[0], Store):
            return None
        st: Store = loop.body[0]
        g = sympy.expand(st.expr - st.target)
        refs = g.atoms(sympy.Indexed)
        if (
            st.op != "="
            or st.target in refs
            or any(self.pr.arrays[str(r.base.label)].role != Role.WEIGHT for r in refs)
        ):
            return None
        self.touch(st.target)
        self.touch(g)
        target = self.pr._print(st.target)

        def term(u: int) -> str:
            self.pr.overrides = {r: f"{r.base.label}[snnc_q{u} + snnc_j]" for r in refs}
            try:
                return self.pr._print(g)
            finally:
                self.pr.overrides = {}

        return {"target": target, "term": term}

    def slots(self, population: str) -> int:
        return next(a.shape[1] for a in self.kernel.arrays if a.name == f"sp_{population}__cnt")

    def spike_list(self, population: str, flag: str = "") -> dict[str, Any]:
        size = self.kernel.populations[population]
        return {
            "population": population,
            "flag": flag,
            "slots": self.slots(population),
            "size": size,
            "words": (size + 31) // 32,
        }

    def macro(self, name: str, depth: int, arg: dict[str, Any]) -> list[str]:
        text = str(getattr(_env().get_template("kernel_macros.c.j2").module, name)(arg)).strip("\n")
        pad = "    " * depth
        return [pad + line if line else line for line in text.splitlines()]


def _exprs_of(st: Stmt) -> set[sympy.Indexed]:
    """The array elements a statement reads or writes (not those of its nested statements)."""
    out: set[sympy.Indexed] = set()
    for name in ("expr", "cond", "target"):
        value = getattr(st, name, None)
        if isinstance(value, sympy.Basic):
            out |= value.atoms(sympy.Indexed) | ({value} if isinstance(value, sympy.Indexed) else set())
    return out


def _ctype(a: Array, scalar: str) -> tuple[str, str]:
    """(C type, manifest dtype): spike-source times and ids are tables of one pointer per trial."""
    if a.role == Role.INPUT and a.var in ("times", "ids"):
        return ("const double*", "ptr_double") if a.var == "times" else ("const int32_t*", "ptr_int32")
    if a.dtype == "scalar":
        return scalar, "scalar"
    return CTYPES[a.dtype], a.dtype


def print_kernel(
    kernel: Kernel, *, precision: str = "float", ir_hash: str = "", abi: int = ABI_VERSION
) -> tuple[str, list[dict]]:
    """The C source of `kernel` and its manifest's array list (in struct order)."""
    code, _, arrays = print_units(kernel, precision=precision, ir_hash=ir_hash, abi=abi, units=1)
    return code, arrays


def print_units(
    kernel: Kernel, *, precision: str = "float", ir_hash: str = "", abi: int = ABI_VERSION, units: int = 1
) -> tuple[str, list[str], list[dict]]:
    """`print_kernel`'s source and array list, and the same code as translation units that compile in
    parallel into the same library: the entry points with the phases they call once, then the phases
    called from two or more places in `units` groups (`_balanced`). No units when `units` < 2 or
    when those phases are less than half the code (most e-prop kernels: their entries call most
    phases once).

    The compiler spends most of its time optimising each function apart, so units on two cores take
    about half the time of the whole file (Yin-Yang EventProp, whose `train` entry calls the phases
    of `run`, `loss` and `backward` again)."""
    scalar = "float" if precision == "float" else "double"
    arrays = {a.name: a for a in kernel.arrays}
    phases = []
    for phase in kernel.phases:
        exact = phase.kind in (PhaseKind.LOSS, PhaseKind.UPDATE)  # in double, as the runtime's numpy
        printer = _Phase(kernel, "double" if exact else precision)
        try:
            lines = printer.body(phase.body, 0)
        except UnprintableExprError as e:
            raise e.within(f"kernel '{kernel.name}', phase '{phase.name}'") from None
        used = [arrays[n] for n in sorted(printer.used | printer.pr.dims_used)]
        stored = {st.target.array for st in walk(phase.body) if isinstance(st, Store)}
        phases.append(
            {
                "name": phase.name,
                "kind": phase.kind.value,
                "comment": phase.comment.replace("*/", "* /"),
                "lines": lines,
                "arrays": [
                    {
                        "name": a.name,
                        "ctype": _ctype(a, scalar)[0],
                        "const": "const "
                        if a.role in READ_ONLY
                        and a.name not in stored  # a loss phase's dL/dy, an update's weights
                        and not _ctype(a, scalar)[0].startswith("const")
                        else "",
                    }
                    for a in used
                ],
            }
        )
    clear = [
        f"memset(A->{a.name} + snnc_b * {a.shape[1]}, 0, sizeof(int32_t) * {a.shape[1]});"
        for a in kernel.arrays
        if a.role == Role.SPIKE_LIST and a.name.endswith("__cnt")
    ]
    by_name = {e.name: e for e in kernel.entries}
    entries = []
    for e in kernel.entries:
        links = [by_name[n] for n in e.chain] if e.chain else [e]
        parts = [_part(link, clear) for link in links if link.before or link.per_step or link.after]
        prepare = tuple(dict.fromkeys(name for link in links for name in link.prepare))  # each once
        summary = "; ".join(p["summary"] for p in parts)
        if e.chain:
            summary = f"entries {', '.join(e.chain)} one after the other ({summary})"
        if e.once:
            summary = (f"{summary}; " if summary else "") + f"then once for the batch: {', '.join(e.once)}"
        lead = "for each trial, " if parts else ""
        if prepare:
            lead = f"once for the batch: {', '.join(prepare)}; then {lead}"
        entries.append(
            {"name": e.name, "prepare": prepare, "parts": parts, "once": e.once, "summary": lead + summary}
        )
    struct = [{"name": a.name, "ctype": _ctype(a, scalar)[0], "comment": _comment(a)} for a in kernel.arrays]
    template = _env().get_template("kernel.c.j2")
    facts = {
        "network": kernel.name,
        "ir_hash": ir_hash,
        "abi": abi,
        "scalar": scalar,
        "dt": literal(kernel.dt, precision),
        "dt_double": repr(float(kernel.dt)),
        "arrays": struct,
        "phases": phases,
        "entries": entries,
        # what a call of each phase passes: its arrays, in its parameters' order
        "args": {ph["name"]: "".join(f"A->{a['name']}, " for a in ph["arrays"]) for ph in phases},
        # a phase's linkage in a unit: seen by the other units, not by the library's users
        "shared": '__attribute__((visibility("hidden"))) ',
    }
    code = template.render(**facts, unit=None)
    calls = Counter(name for e in entries for name in _called(e))
    shared = [ph for ph in phases if calls[ph["name"]] > 1]
    if units < 2 or len(shared) < 2 or 2 * _length(shared) < _length(phases):
        # the entry points' unit would take most of the time anyway
        return code, [], [_manifest_entry(a, scalar, kernel) for a in kernel.arrays]
    groups = [[ph["name"] for ph in phases if calls[ph["name"]] <= 1], *_balanced(shared, units)]
    texts = [
        template.render(
            **facts, unit={"index": i, "count": len(groups), "phases": set(group), "entries": i == 0}
        )
        for i, group in enumerate(groups)
    ]
    return code, texts, [_manifest_entry(a, scalar, kernel) for a in kernel.arrays]


def _called(entry: dict[str, Any]) -> list[str]:
    """The phases `entry` calls, once per call site."""
    parts = [name for part in entry["parts"] for key in ("before", "per_step", "after") for name in part[key]]
    return [*entry["prepare"], *parts, *entry["once"]]


def _length(phases: list[dict[str, Any]]) -> int:
    """The printed length of `phases` (a phase's signature counted as 200 characters)."""
    return sum(sum(len(line) for line in ph["lines"]) + 200 for ph in phases)


def _balanced(phases: list[dict[str, Any]], n: int) -> list[list[str]]:
    """The phases in at most `n` groups of about equal printed length (the compiler's time grows with
    it, roughly).

    Only phases called from two or more places leave the entry points' unit: the compiler inlines
    a phase called once into its entry (in the whole file too), and a forward pass of small phases
    ran 5-7 % slower as calls (benchmarks/sim_throughput.py's network, one thread); a phase called
    twice it compiles once, as a call, in either. Where the entry points see the body of a phase
    called twice, the compiler also specialises it for its calls and compiles it again (the unit of
    the entries and half the phases took 70 % of the time), so those are not kept with them."""
    sizes = {ph["name"]: _length([ph]) for ph in phases}
    groups: list[list[str]] = [[] for _ in range(min(n, len(phases)))]
    load = [0] * len(groups)
    for name in sorted(sizes, key=lambda name: -sizes[name]):
        lightest = load.index(min(load))
        groups[lightest].append(name)
        load[lightest] += sizes[name]
    return groups


def _part(e: Entry, clear: list[str]) -> dict[str, Any]:
    """What one trial runs of entry `e`: its phases before, inside and after its time loop."""
    summary = ", then ".join(
        part
        for part in (
            f"{', '.join(e.before)}" if e.before else "",
            f"per step ({e.steps}): {', '.join(e.per_step)}" if e.per_step else "",
            f"{', '.join(e.after)}" if e.after else "",
        )
        if part
    )
    return {
        "before": e.before,
        "per_step": e.per_step,
        "after": e.after,
        "steps": e.steps,
        # a forward time loop appends to the per-step spike lists: they start empty per trial
        "spike_lists": clear if e.steps == "forward" and e.per_step else [],
        "summary": summary,
    }


def _comment(a: Array) -> str:
    text = (
        f"{a.role.value} of {a.owner}"
        + (f" ({a.var})" if a.var else "")
        + (f": {a.comment}" if a.comment else "")
    )
    return text.replace("*/", "* /")


def _runtime_owner(a: Array, kernel: Kernel) -> str:
    """The key the runtime files an array under: a per-neuron param `bias` of population `out` (and
    its gradient) is the weight `bias_out`, a synapse param `tau` of projection `x_to_h` the weight
    `tau_x_to_h`; every other array is its owner's."""
    trained = a.role == Role.PARAM or (a.role == Role.GRADIENT and a.var is not None)
    return param_key(a.var, a.owner) if trained else a.owner


def _manifest_entry(a: Array, scalar: str, kernel: Kernel) -> dict[str, Any]:
    kind = MANIFEST_KIND.get(a.role)
    if a.name.startswith("in_"):  # the loader fills every input-side array of a generator
        kind = "input"
    if a.role == Role.STATE:
        kind = "state" if a.owner in kernel.populations else "synapse_state"
    if a.role == Role.SPIKE_LIST and a.var in ("times", "count"):  # per-neuron spike-time buffers
        kind = "events"
    if "events" in a.shape or a.role == Role.ADJOINT:
        kind = "grad_buf"  # allocated by the loader, written before it is read
    if a.role == Role.INPUT and a.var == "capacity":
        kind = "log_size"  # a spike list's capacity per trial: the loader's, grown with the data
    return {
        "name": a.name,
        "dtype": _ctype(a, scalar)[1],
        "shape": list(a.shape),
        "kind": kind or a.role.value,
        "role": a.role.value,
        "owner": _runtime_owner(a, kernel),
        "var": a.var,
        "init": a.init,
        "comment": a.comment,
    }
