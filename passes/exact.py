"""The `exact` integrator: linear ODE systems with constant coefficients, solved by matrix exponential.

Between two steps the inputs (and states without an ODE) are constant, so `x' = A x + B u` with `A`
and `B` depending only on params has the exact solution `x(dt) = e^{A dt} x + Phi(dt) B u`, where
`Phi(dt) = int_0^dt e^{As} ds`. Both come out of one exponential of the augmented matrix
`[[A, B], [0, 0]] dt`, which also works for a singular `A` (IntegrateFire: `A = 0`). A synapse's
output is the step average of its output state, `(1/dt) int_0^dt x_out(s) ds`, obtained by adding
an accumulator row `q' = x_out`. As in brian2's `exact.py`, anything that is not of this form is
refused with the term that defeats it.
"""

from __future__ import annotations

import sympy
from snnc.ir.model import Assign
from snnc.ir.symbols import dt, sym, t

from .integrators import Hoister, Integration, Names, OdeSystem, Unsupported, phi, register

Expr = sympy.Expr
ONE = sympy.Integer(1)


class LinearSystem:
    """`x' = A x + B u`: A as {(row state, column state): coeff}, B as {(row state, atom): coeff}."""

    def __init__(self, system: OdeSystem):
        self.system = system
        self.states = system.states
        xs = system.state_symbols
        dynamic = [*xs, *sorted(system.held, key=str), t]
        self.A: dict[tuple[str, str], Expr] = {}
        self.B: dict[tuple[str, Expr], Expr] = {}
        self.atoms: list[Expr] = []  # forcing terms: ONE, inputs, functions of inputs
        for s in self.states:
            rhs = system.rhs[s]
            if rhs.has(t):
                raise Unsupported("exact", f"d{s}/dt depends on time: term `{_culprit(rhs, t)}`")
            for term in sympy.Add.make_args(sympy.expand(rhs)):
                coeff, rest = term.as_independent(*dynamic, as_Add=False)
                if rest in xs:
                    key = (s, str(rest))
                    self.A[key] = self.A.get(key, 0) + coeff
                    continue
                in_states = sorted(rest.free_symbols & set(xs), key=str)
                if in_states:
                    raise Unsupported("exact", _why_not_linear(s, term, rest, in_states[0], xs))
                if rest not in self.atoms:
                    self.atoms.append(rest)
                key = (s, rest)
                self.B[key] = self.B.get(key, 0) + coeff
        self.A = {k: v for k, v in self.A.items() if v != 0}
        self.B = {k: v for k, v in self.B.items() if v != 0}
        # atoms in a stable order: the constant first, then by printed form
        self.atoms = sorted({a for (_, a) in self.B}, key=lambda a: (a != ONE, str(a)))

    def blocks(self) -> list[list[str]]:
        """States grouped into independent coupled blocks (connected through A), in ODE order."""
        parent = {s: s for s in self.states}

        def find(s: str) -> str:
            while parent[s] != s:
                parent[s] = parent[parent[s]]
                s = parent[s]
            return s

        for i, j in self.A:
            parent[find(i)] = find(j)
        groups: dict[str, list[str]] = {}
        for s in self.states:
            groups.setdefault(find(s), []).append(s)
        return list(groups.values())


def _culprit(expr: Expr, symbol: sympy.Symbol) -> Expr:
    for term in sympy.Add.make_args(sympy.expand(expr)):
        if term.has(symbol):
            return term
    return expr


def _why_not_linear(s: str, term: Expr, rest: Expr, x: sympy.Symbol, xs: list[sympy.Symbol]) -> str:
    coefficient = sympy.cancel(rest / x)
    if coefficient.free_symbols & set(xs) or not (rest / x).is_polynomial(*xs):
        return f"d{s}/dt is not linear in the states: term `{term}`"
    others = ", ".join(sorted(str(v) for v in coefficient.free_symbols))
    return f"in d{s}/dt the coefficient of {x} in term `{term}` depends on {others}, which is not constant"


def _atom_name(atom: Expr, atoms: list[Expr]) -> str:
    if atom == ONE:
        return "const"
    if atom.is_Symbol:
        return str(atom)
    return f"f{atoms.index(atom)}"


def _tidy(expr: Expr) -> Expr:
    """A readable form of a matrix-exponential entry (only for coupled blocks, so rarely called)."""
    expr = sympy.simplify(expr)
    if expr.has(sympy.I):
        expr = sympy.simplify(sympy.expand_complex(expr.rewrite(sympy.cos)))
    return expr


def _triangular_order(T: sympy.Matrix) -> list[int] | None:
    """An order of the states in which `T` is upper triangular (each state driven only by states
    after it), or None when the states drive each other in a cycle."""
    n = T.rows
    drives = {i: {j for j in range(n) if j != i and T[i, j] != 0} for i in range(n)}
    order: list[int] = []
    while len(order) < n:
        ready = [i for i in range(n) if i not in order and drives[i] <= set(order)]
        if not ready:
            return None
        order.extend(ready)
    return order[::-1]


def _triangular_exp(T: sympy.Matrix) -> sympy.Matrix | None:
    """`e^T` by Parlett's recurrence when the system is triangular up to an ordering of its states
    and its diagonal entries differ: the usual synapse -> membrane chain. sympy's general route (a
    Jordan form) took about a second per 2x2 block, most of a cold EventProp compile. None where
    the recurrence does not apply (a cycle, or equal diagonal entries: Jordan blocks)."""
    order = _triangular_order(T)
    if order is None:
        return None
    U = T.extract(order, order)
    n = U.rows
    for i in range(n):  # equal entries make a Jordan block; symbols count as distinct, as in sympy
        for j in range(i + 1, n):
            if sympy.cancel(U[j, j] - U[i, i]).is_zero:
                return None
    F = sympy.zeros(n, n)
    for i in range(n):
        F[i, i] = sympy.exp(U[i, i])
    for d in range(1, n):  # F_ij from the entries nearer the diagonal, by FT = TF (Parlett 1976)
        for i in range(n - d):
            j = i + d
            acc = U[i, j] * (F[j, j] - F[i, i])
            for k in range(i + 1, j):
                acc += U[i, k] * F[k, j] - F[i, k] * U[k, j]
            F[i, j] = acc / (U[j, j] - U[i, i])
    E = sympy.zeros(n, n)
    for a, i in enumerate(order):
        for b, j in enumerate(order):
            E[i, j] = F[a, b]
    return E


def _inputs_apart_exp(T: sympy.Matrix) -> sympy.Matrix | None:
    """`e^T` where some rows of `T` are zero (constant inputs, the atoms `_coupled` appends): with
    the states P and one input column q, e^[[P, q], [0, 0]] = [[e^P, phi(P) q], [0, 1]], so each
    input's column comes from the recurrence on the states plus that one input. Taken together,
    two inputs (two zeros on the diagonal) would look like a Jordan block to the recurrence and send
    the block down sympy's slow route (seconds for a neuron with a bias and a synaptic input)."""
    zero = [i for i in range(T.rows) if all(e == 0 for e in T.row(i))]
    if len(zero) < 2:
        return _triangular_exp(T)
    rest = [i for i in range(T.rows) if i not in zero]
    E = sympy.eye(T.rows)
    core = _triangular_exp(T.extract(rest, rest))
    if core is None:
        return None
    for a, i in enumerate(rest):
        for b, j in enumerate(rest):
            E[i, j] = core[a, b]
    for z in zero:
        one = _triangular_exp(T.extract([*rest, z], [*rest, z]))
        if one is None:
            return None
        for a, i in enumerate(rest):
            E[i, z] = one[a, len(rest)]
    return E


def propagator(M: sympy.Matrix, states: list[str]) -> sympy.Matrix:
    """`e^{M dt}` in closed form: the one matrix exponential of the compiler. `discretise` steps
    coupled linear blocks forward with it, and EventProp's backward pass (`passes/adjoint.py`)
    steps the adjoints back with its transpose. Raises `Unsupported` naming `states` when sympy
    finds no closed form or the result keeps complex eigenvalues."""
    fast = _inputs_apart_exp(M * dt)
    if fast is not None:
        return fast
    try:
        E = (M * dt).exp()
    except Exception as err:  # sympy cannot always find a closed form
        raise Unsupported(
            "exact", f"no closed-form matrix exponential for the coupled states {', '.join(states)}"
        ) from err
    if E.has(sympy.I) and not all(not _tidy(e).has(sympy.I) for e in E):
        raise Unsupported("exact", f"complex eigenvalues in the coupled states {', '.join(states)}")
    return E


class Exact:
    """Exact integration of linear constant-coefficient systems (preferred whenever it applies)."""

    name = "exact"

    def integrate(self, system: OdeSystem, names: Names, sub_steps: int = 1) -> Integration:
        lin = LinearSystem(system)
        for (s, _), coeff in [*lin.A.items(), *lin.B.items()]:
            if not system.is_constant(coeff):
                held = ", ".join(sorted(str(v) for v in coeff.free_symbols - system.constants))
                raise Unsupported(
                    "exact", f"a coefficient in d{s}/dt depends on {held}, which is not constant"
                )
        hoist = Hoister(names)
        update: list[Assign] = []
        output: Expr | None = None
        out_state = system.model.output if system.model.is_synapse else None
        coupled = []
        for block in lin.blocks():
            if len(block) == 1:
                new, avg = self._scalar(lin, block[0], hoist, lin.atoms, out_state == block[0])
            else:
                coupled.append(block)
                new, avg = self._coupled(lin, block, hoist, out_state if out_state in block else None)
            update += [Assign(s, "=", new[s]) for s in block]
            if avg is not None:
                output = avg
        reason = "linear with constant coefficients: matrix exponential"
        if coupled:
            reason += " (coupled: " + "; ".join(", ".join(b) for b in coupled) + ")"
        return Integration(self.name, reason, hoist.derived, [], update, output=output)

    @staticmethod
    def _scalar(
        lin: LinearSystem, s: str, hoist: Hoister, atoms: list[Expr], want_output: bool
    ) -> tuple[dict[str, Expr], Expr | None]:
        x = sym(s)
        a = lin.A.get((s, s), sympy.Integer(0))
        gain = phi(a)
        new = hoist(f"P_{s}_{s}", sympy.exp(a * dt)) * x
        for atom in atoms:
            b = lin.B.get((s, atom))
            if b is not None:
                new += hoist(f"P_{s}_{_atom_name(atom, atoms)}", sympy.factor_terms(gain * b)) * atom
        if not want_output:
            return {s: new}, None
        # int_0^dt Phi(s) ds = (Phi - dt)/a, or dt^2/2 when a = 0
        if a == 0:
            twice = dt**2 / 2
        elif a.is_zero is False:
            twice = (gain - dt) / a
        else:
            twice = sympy.Piecewise((dt**2 / 2, sympy.Eq(a, 0)), ((gain - dt) / a, True))
        avg = hoist(f"scale_{s}", gain / dt) * x
        for atom in atoms:
            b = lin.B.get((s, atom))
            if b is not None:
                avg += (
                    hoist(f"scale_{s}_{_atom_name(atom, atoms)}", sympy.factor_terms(twice * b / dt)) * atom
                )
        return {s: new}, avg

    @staticmethod
    def _coupled(
        lin: LinearSystem, block: list[str], hoist: Hoister, out: str | None
    ) -> tuple[dict[str, Expr], Expr | None]:
        atoms = [a for a in lin.atoms if any((s, a) in lin.B for s in block)]
        n, acc = len(block), 1 if out is not None else 0
        size = n + acc + len(atoms)
        M = sympy.zeros(size, size)
        for i, si in enumerate(block):
            for j, sj in enumerate(block):
                M[i, j] = lin.A.get((si, sj), 0)
            for k, atom in enumerate(atoms):
                M[i, n + acc + k] = lin.B.get((si, atom), 0)
        if out is not None:
            M[n, block.index(out)] = 1
        E = propagator(M, block)

        def row(i: int, base: str, scale: Expr = ONE) -> Expr:
            total = sympy.Integer(0)
            for j, sj in enumerate(block):
                entry = _tidy(E[i, j] * scale) if E[i, j] != 0 else 0
                if entry != 0:
                    total += hoist(f"{base}_{sj}", entry) * sym(sj)
            for k, atom in enumerate(atoms):
                entry = E[i, n + acc + k]
                if entry != 0:
                    total += hoist(f"{base}_{_atom_name(atom, lin.atoms)}", _tidy(entry * scale)) * atom
            return total

        for i, s in enumerate(block):  # decay factors first, so later entries can refer to them
            if E[i, i] != 0:
                hoist(f"P_{s}_{s}", _tidy(E[i, i]))
        new = {s: row(i, f"P_{s}") for i, s in enumerate(block)}
        avg = row(n, f"scale_{out}", 1 / dt) if out is not None else None
        return new, avg


register(Exact(), first=True)
