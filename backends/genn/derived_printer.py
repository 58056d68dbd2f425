"""Print the values an entry computes once per trial, before its steps, as GeNN custom updates.

An entry's `before` phases reset every per-trial array to a number (`kernel_printer` hands those to
the per-trial `Reset` update) and may also compute values that are constant over the trial but
change when training changes a param: the derived params of per-neuron params
(`dp_<P>__P_i_i[b, j] = exp(-dt/pp_<P>__tau[j])`, `schedule_forward.DERIVED_PHASE`). GeNN has no
code that runs once per trial, so each loop over the neurons of a population in such a phase becomes
a custom update over that population in the `Reset` group, which the runtime runs before every trial,
after it has set the params (`set_weights`) and before the first step reads them. The params it reads
are vars of the population, shared by the batch and read-only to the model; the values it writes
are per-trial vars of the same neurons, named as the step code names them (`genn_var`).
"""

from __future__ import annotations

from typing import Any

import sympy
from snnc.ir.kernel import Array, Entry, Kernel, Loop, Neurons, Phase, PhaseKind, Role, Store, walk

from .kernel_printer import GENN_TYPES, NeuronCode, StatementPrinter, genn_var
from .models import Var
from .render import PopulationCtx, fail

#: the custom update group the runtime runs before every trial (`runtime.GeNNArtefact.reset`)
GROUP = "Reset"


def computes(phase: Phase) -> bool:
    """A reset-kind phase whose stores are not all numbers: values computed once per trial."""
    return phase.kind == PhaseKind.RESET and any(
        isinstance(st, Store) and not sympy.sympify(st.expr).is_number for st in walk(phase.body)
    )


def print_derived(kernel: Kernel, entry: Entry, populations: dict[str, PopulationCtx]) -> list[Any]:
    """One custom update (group `Reset`) per loop of `entry`'s `before` phases that computes values;
    the vars it reads and writes are declared on the population where its step code has not."""
    out = []
    for name in entry.before:
        phase = kernel.phase(name)
        if not computes(phase):
            continue
        for loop in phase.body:
            if not (isinstance(loop, Loop) and isinstance(loop.space, Neurons)):
                raise fail(
                    f"phase '{name}': a {type(loop).__name__} computed once per trial has no GeNN form"
                )
            pop = loop.space.population
            if pop not in populations:
                raise fail(f"phase '{name}': population '{pop}' has no GeNN neuron model to hold its values")
            k = sum(cu.name.startswith(f"reset_{pop}__{phase.name}") for cu in out)
            out.append(_update(kernel, phase, k, loop, populations[pop]))
    return out


def _update(kernel: Kernel, phase: Phase, k: int, loop: Loop, p: PopulationCtx) -> Any:
    """The custom update (an `emit.CustomUpdateCtx`) of loop number `k` of `phase`, over `p`."""
    from .emit import CustomUpdateCtx

    printer = StatementPrinter(kernel, NeuronCode(p.name))
    printer.pr.neuron = loop.vars["j"]
    lines = [f"// {phase.comment} ({loop.comment or p.name})", *printer.body(loop.body)]
    written = {
        genn_var(kernel.array(st.target.array), kernel) for st in walk(loop.body) if isinstance(st, Store)
    }
    refs: dict[str, str] = {}
    var_refs: list[Var] = []
    for var, a in sorted(printer.pr.vars.items()):
        if a.role not in (Role.PARAM, Role.SCRATCH):
            raise fail(
                f"phase '{phase.name}': '{a.name}' ({a.role.value}) is not a value GeNN computes per trial"
            )
        _declare(p, var, a)
        mode = "VarAccessMode.READ_WRITE" if var in written else "VarAccessMode.READ_ONLY"
        refs[var] = f'create_var_ref(pops["{p.name}"], "{var}")'
        var_refs.append(Var(var, GENN_TYPES.get(a.dtype, "scalar"), mode))
    # `__` keeps it apart from `reset_<population>` (user names have none), `reset_` has the runtime
    # run the Reset group
    name = f"reset_{p.name}__{phase.name}" + (f"__{k}" if k else "")
    return CustomUpdateCtx.of_code(
        name, GROUP, f"snnc_{name}", f"population {p.name}: {phase.comment}", "\n".join(lines), var_refs, refs
    )


def _declare(p: PopulationCtx, var: str, a: Array) -> None:
    """`var` as a var of the population unless its step code declared it: a param shared by the batch
    and read-only to the model (the runtime sets it, like a weight), a computed value per trial."""
    if any(v.name == var for v in p.model.vars):
        return
    access = "VarAccess.READ_ONLY" if a.role == Role.PARAM else None
    p.model.vars.append(Var(var, GENN_TYPES.get(a.dtype, "scalar"), access))
    p.var_init[var] = 0.0


__all__ = ["GROUP", "computes", "print_derived"]
