"""Lower e-prop (`EpropIR`, `snnc.passes.eprop`) into the kernel IR, beside the forward step.

The kernel keeps the forward schedule (`schedule_forward`) and its entry `run`, a plain forward
pass, and adds the entry `eprop_run`, which also accumulates the gradients. Per step k it runs, in
the order `snnc.passes.eprop` documents:

1. `zpre__<P>` for every e-prop projection P: the presynaptic spikes emitted at `k - 1 - delay`,
   0/1 per pre neuron, read before any population of this step overwrites its spike list;
2. the forward deliveries and input generators (and any population e-prop does not train);
3. per output population: `learn_step__<pop>` (its forward step with taps), then `learn__<pop>`:
   eligibility propagation (start-of-step values), the reductions and errors E, the exact
   output-weight and bias gradients;
4. per hidden population: `signal__<pop>` (`L_j = Σ c Σ_k B_jk E_k` from this step's errors), its
   forward step with taps, then `learn__<pop>`: propagate, trace, accumulate, filter and jump of
   every incoming projection, then of every trained param (a loop over the neurons), at the
   pre-reset values of this step.

A trained param is an array `tp_<pop>__<param>` ([1] if shared, [n] per neuron) that the forward
step reads; a derived param made of it (`exp(-dt/tau_mem[j])`) is tapped once per neuron and step
(`ed_<pop>__<name>`) for the learning loops, so no synapse loop recomputes it. A trained synapse
param is the forward's per-post-neuron array `pp_<P>__<param>` (its derived params `dp_<P>__<name>`,
computed once per trial by the forward's `derived_params` phase, which `eprop_run` runs too); its
eligibilities are per post neuron like a neuron param's (`eep_<P>__<param>__<state>`).

What e-prop reads from inside a neuron's step (start-of-step and pre-reset states, inputs, synapse
states, ψ, z, the refractory flag, the filtered rate) the forward step stores through taps
(`schedule_forward.Tap`) into per-neuron arrays, and the learning phases loop over the synapses of
each projection reading them there: the same arithmetic as the fused loops of the old C kernel, in
the same order per synapse. Eligibilities with one value per presynaptic neuron (scope "pre") are
propagated into a `next` array and committed at the end of the phase, so that every synapse reads
both the old and the new value.

The C kernel walks a sparse (CSR) projection into a hidden population post-major (`post_major`):
GCC vectorises a learning loop over stored synapses with one gather per value of the post neuron
(refractory flag, ψ, rate, learning signal: four 16-lane gathers per 16 synapses), which cost 10x
a contiguous load; post neuron by post neuron those values are loop-invariant. The projection's
eligibilities, filtered trace and trial gradient (`egs_<P>`) are then laid out in that order, and
so is a per-synapse copy of z_pre (`ezs_<P>`), which `zpre__<P>` sets and clears along the rows of
the pre neurons that spike, so that the loop gathers nothing. `order__<P>` (a prepare phase, once
per batch, since Deep R moves column indices between batches) sorts the CSR structure by post
neuron, and `gradient__<P>` (after the trial) copies the trial gradient into `eg_<P>`'s order.

Array roles: eligibilities, filtered traces and the filtered rate are ELIGIBILITY; gradients per
batch row GRADIENT; labels and per-step targets TARGET; fixed random feedback B FEEDBACK; the output
bias and the trained params PARAMs of their population (which `schedule_forward` reads from their
arrays, as any kept param); what one phase hands to a later one SCRATCH. The runtime zeroes
ELIGIBILITY and GRADIENT arrays before every run. Array names start with `e` (`ee_<P>__<state>`,
`eg_<P>`, a param's `eep_`, `efp_`, `egp_`, ...) and phase names contain `__`, so none equals a
forward array or phase of the same network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sympy
from snnc.ir import names
from snnc.ir.connectivity import kind_of
from snnc.ir.eprop_ir import EpropIR, HiddenEprop, OutputEprop, ParamEprop, ProjectionEprop
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    ElementRef,
    Elements,
    Entry,
    If,
    Index,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    PostSynapses,
    Role,
    Row,
    Spikes,
    Stmt,
    Store,
    Synapses,
    prune_lets,
    trial_element,
)
from snnc.ir.model import Network
from snnc.ir.names import array as array_name
from snnc.ir.symbols import TIME, TIMESTEP, sym

from .schedule_forward import Tap, schedule_forward

I, J, Q, S = Index("i"), Index("j"), Index("q"), Index("s")  # noqa: E741 (the kernel IR's index names)
SYNAPSE_VARS = {"i": I, "j": J, "q": Q}
POST_MAJOR_VARS = {"i": I, "j": J, "q": Q, "s": S}
ZERO, ONE = sympy.Float(0.0), sympy.Float(1.0)

#: where a per-neuron symbol's value is read: at the start of the step (propagate) or at the spike
START, SPIKE = "start", "spike"


def element(name: str, *index: sympy.Expr) -> ElementRef:
    return ElementRef(sympy.IndexedBase(name), *index)


def pruned(body: list[Stmt]) -> tuple[Stmt, ...]:
    """`body` without the lets nothing after them reads (a synapse loop loads only what it uses)."""
    return prune_lets(tuple(body))


@dataclass
class _Schedule:
    network: Network
    ir: EpropIR
    arrays: dict[str, Array] = field(default_factory=dict)
    taps: dict[str, list[Tap]] = field(default_factory=dict)
    post_major: bool = False

    def add(self, array: Array) -> Array:
        if array.name not in self.arrays:
            self.arrays[array.name] = array
        return self.arrays[array.name]

    def size(self, population: str) -> int:
        return self.network.populations[population].size

    def per_neuron(
        self, prefix: str, pop: str, var: str, role: Role = Role.SCRATCH, part: str | None = None
    ) -> Array:
        """A [batch, neuron] array of `pop` holding `var`: `<prefix>_<pop>` or `<prefix>_<pop>__<part>`."""
        name = array_name(prefix, pop, *([part] if part else []))
        return self.add(Array(name, role, pop, ("batch", self.size(pop)), var=var))

    def sparse(self, projection: str) -> bool:
        """A CSR projection: its per-synapse arrays hold one value per stored synapse ([batch, nnz],
        at slot q), not one per pair of neurons ([batch, pre, post], at (i, j))."""
        return kind_of(self.network.projections[projection].connectivity.kind).layout == "csr"

    def synapse_shape(self, pe: ProjectionEprop) -> tuple[int | str, ...]:
        if self.sparse(pe.projection):
            return ("batch", "nnz")
        return ("batch", self.size(pe.pre), self.size(pe.post))

    def at_synapse(self, array: Array, projection: str) -> sympy.Expr:
        """The element of synapse (i, j, q) of a per-synapse array of `projection` (at its post-major
        position s if the projection's learning loop walks post-major)."""
        if self.walks_post_major(projection):
            return array[BATCH, S]
        return array[BATCH, Q] if self.sparse(projection) else array[BATCH, I, J]

    def walks_post_major(self, projection: str) -> bool:
        """A sparse projection into a hidden population, when the schedule walks those post-major:
        its eligibilities, filtered traces and trial gradient are laid out post neuron by post neuron,
        so the learning loop reads the post neuron's values (refractory flag, ψ, rate, learning
        signal) once per post neuron instead of gathering them per synapse."""
        pe = self.ir.projections.get(projection)
        return self.post_major and pe is not None and pe.role == "hidden" and self.sparse(projection)

    def structure(self, prefix: str, projection: str, shape: tuple, comment: str) -> Array:
        """An int32 array of `projection`'s post-major order (`order__<P>` fills it)."""
        return self.add(
            Array(array_name(prefix, projection), Role.SCRATCH, projection, shape, "int32", comment=comment)
        )

    def post_order(self, projection: str) -> PostSynapses:
        """The post-major walk of `projection` and its int32 structure arrays (`ecp_`, `eci_`, `ecq_`)."""
        post, pre = self.network.projections[projection].post, self.network.projections[projection].pre
        ptr = self.structure(
            "ecp",
            projection,
            (self.size(post) + 1,),
            "post-major: first position of each post neuron's synapses",
        )
        pres = self.structure("eci", projection, ("nnz",), f"post-major: the {pre} neuron of each position")
        slot = self.structure("ecq", projection, ("nnz",), "post-major: the weight slot of each position")
        return PostSynapses(projection, ptr.name, pres.name, slot.name)

    def post_order_phase(self, projection: str) -> Phase:
        """Once per batch (Deep R moves the column indices between batches): the post-major order of
        `projection`'s synapses, a counting sort of the CSR arrays by post neuron (pre neurons
        ascending within each post neuron)."""
        space = self.post_order(projection)
        post = self.network.projections[projection].post
        at = self.structure(
            "ecn", projection, (self.size(post),), "post-major: next free position of each post neuron"
        )
        p = sympy.IndexedBase(space.ptr)
        nxt = sympy.IndexedBase(at.name)
        zero, one = sympy.Integer(0), sympy.Integer(1)
        body = (
            Store(ElementRef(p, zero), zero, comment="count the synapses of each post neuron"),
            Loop(Neurons(post), (Store(ElementRef(p, J + 1), zero),), {"j": J}),
            Loop(Synapses(projection), (Store(ElementRef(p, J + 1), one, "+="),), dict(SYNAPSE_VARS)),
            Loop(Neurons(post), (Store(ElementRef(p, J + 1), p[J], "+="),), {"j": J}, comment="running sum"),
            Loop(Neurons(post), (Store(ElementRef(nxt, J), p[J]),), {"j": J}),
            Loop(
                Synapses(projection),
                (
                    Store(ElementRef(sympy.IndexedBase(space.pre), nxt[J]), I),
                    Store(ElementRef(sympy.IndexedBase(space.slot), nxt[J]), Q),
                    Store(ElementRef(sympy.IndexedBase(self.post_position(projection).name), Q), nxt[J]),
                    Store(ElementRef(nxt, J), one, "+="),
                ),
                dict(SYNAPSE_VARS),
                comment="each synapse at its post neuron's next position",
            ),
        )
        return Phase(f"order__{projection}", PhaseKind.PREPARE, body, f"post-major order of {projection}")

    def gradient_phase(self, projection: str) -> Phase:
        """After the trial: the post-major trial gradient into the weight-slot order of `eg_<P>`."""
        space = self.post_order(projection)
        pe = self.ir.projections[projection]
        store = Store(self.gradient(pe)[BATCH, Q], self.trial_gradient(pe)[BATCH, S])
        loop = Loop(space, (store,), dict(POST_MAJOR_VARS), comment=f"dW of {projection} by weight slot")
        return Phase(
            f"gradient__{projection}", PhaseKind.REDUCE, (loop,), f"dL/dW of {projection} per batch row"
        )

    def trial_gradient(self, pe: ProjectionEprop) -> Array:
        """dL/dW per batch row where the learning loop accumulates it: `eg_<P>` itself, or for a
        post-major walk `egs_<P>` in post-major order, which `gradient__<P>` copies into `eg_<P>`."""
        if not self.walks_post_major(pe.projection):
            return self.gradient(pe)
        return self.add(
            Array(
                array_name("egs", pe.projection),
                Role.ELIGIBILITY,
                pe.projection,
                self.synapse_shape(pe),
                comment="dL/dW per batch row, post-major",
            )
        )

    # ------------------------------------------------------------------ per-neuron values
    def tap(self, pop: str, array: Array, expr: sympy.Expr, at: str, comment: str) -> None:
        target = array[BATCH, J]
        if all(t.target != target for t in self.taps.get(pop, [])):
            self.taps.setdefault(pop, []).append(Tap(target, expr, at, comment=comment))

    def neuron_value(self, pop: str, name: str, where: str) -> Array:
        """The array a tap fills with the post neuron's `name` (a state, input, temp or synapse
        state; ψ, z or the refractory flag) as the learning phases read it."""
        model = self.network.models[self.network.populations[pop].model]
        if name in model.states and where == START:
            array = self.per_neuron("es", pop, name, Role.SCRATCH, name)
            state = element(array_name("p", pop, name), BATCH, J)  # not yet stored: start of step
            self.tap(pop, array, state, "update", f"{name} at the start of the step")
            return array
        temps = dict(self.network.specialised.populations[pop].temps)
        if name in model.states or name in model.inputs or name in temps or names.is_coupled(name):
            array = self.per_neuron("eu", pop, name, Role.SCRATCH, name)
            self.tap(pop, array, sym(name), "update", f"{name} after the update, before the reset")
            return array
        if name == names.REFRACTORY:
            array = self.per_neuron("erf", pop, name)
            self.tap(pop, array, sym(name), "update", "1 while refractory in this step")
            return array
        if name == names.Z:
            array = self.per_neuron("ez", pop, name)
            self.tap(pop, array, sym(name), "end", "spiked in this step")
            return array
        if name == names.PSI:
            he = self.ir.hidden[pop]
            array = self.per_neuron("epsi", pop, name)
            self.tap(pop, array, self.numbers(he.psi, pop), "update", "pseudo-derivative, pre-reset")
            return array
        if name == names.F_AVG:
            return self.f_avg(pop)
        if name == names.LEARNING_SIGNAL:
            return self.per_neuron("eL", pop, name)
        if name == names.ERROR:
            return self.per_neuron("eE", pop, name)
        raise AssertionError(f"e-prop schedule: no per-neuron value '{name}' of population '{pop}'")

    def f_avg(self, pop: str) -> Array:
        array = self.per_neuron("ea", pop, names.F_AVG, Role.ELIGIBILITY)
        he = self.ir.hidden[pop]
        expr = self.numbers(he.f_avg.expr, pop).xreplace({sym(names.F_AVG): array[BATCH, J]})
        self.tap(pop, array, expr, "end", "filtered firing rate")
        return array

    def values(self, pop: str, projection: str | None = None) -> dict[sympy.Symbol, sympy.Expr]:
        """Params and derived params of the post population (and the projection's synapse, as
        coupled names) by value; a kept (trained) param reads its array."""
        sp = self.network.specialised.populations[pop]
        kept = {sym(k): self.kept(pop, k) for k in sp.kept}
        trained = {sym(pe.param) for pe in self.params_of(pop) if pe.projection is None}  # not the bias
        out = {}
        for k, v in sp.values:
            if k in sp.kept:
                continue
            value = sympy.sympify(v).xreplace(kept)
            if sympy.sympify(v).free_symbols & trained:
                # a derived param of a trained one (`exp(-dt/tau_mem[j])`): computed once per neuron
                # in its step, not in every synapse of the learning loops
                array = self.per_neuron("ed", pop, k, Role.SCRATCH, k)
                self.tap(pop, array, value, "update", f"derived {k} of a trained param")
                value = array[BATCH, J]
            out[sym(k)] = value
        out |= kept
        out[sym(TIME)] = STEP * sympy.Float(self.network.dt, 17)
        if projection is not None and projection in self.network.specialised.projections:
            syn = self.network.specialised.projections[projection]
            out |= {sym(names.coupled(k, projection)): v for k, v in syn.values if k != TIMESTEP}
            out |= self.synapse_arrays(projection)
        return out

    def synapse_arrays(self, projection: str) -> dict[sympy.Symbol, sympy.Expr]:
        """The coupled synapse params held in arrays (trained, or per post neuron: `pp_<P>__<param>`)
        and their derived params (`dp_<P>__<name>`, computed once per trial), for post neuron `j`:
        the arrays `schedule_forward` declares for the synapse's step."""
        syn = self.network.specialised.projections[projection]
        out: dict[sympy.Symbol, sympy.Expr] = {}
        for k in syn.per_neuron:
            index = sympy.Integer(0) if k in syn.shared else J
            out[sym(names.coupled(k, projection))] = element(array_name("pp", projection, k), index)
        for k, _ in syn.per_neuron_derived:
            out[sym(names.coupled(k, projection))] = element(array_name("dp", projection, k), BATCH, J)
        return out

    def kept(self, pop: str, param: str) -> ElementRef:
        """The element of post neuron `j` of a trained param's array (its one element if shared)."""
        spec = self.network.populations[pop].trainable.get(param)
        shared = spec is not None and not spec.per_neuron
        return element(array_name("tp", pop, param), sympy.Integer(0) if shared else J)

    def numbers(self, expr: sympy.Expr, pop: str, projection: str | None = None) -> sympy.Expr:
        return sympy.sympify(expr).xreplace(self.values(pop, projection))

    def bind(
        self,
        expr: sympy.Expr,
        pop: str,
        where: str,
        known: dict[sympy.Symbol, sympy.Expr],
        projection: str | None = None,
    ) -> sympy.Expr:
        """`expr` with params as numbers, `known` symbols replaced, and every other symbol read from
        the per-neuron array of post neuron `j` of `pop`."""
        expr = sympy.sympify(expr).xreplace(known).xreplace(self.values(pop, projection))
        labels = {r.base.label for r in expr.atoms(sympy.Indexed)}
        free = sorted(  # by name: the arrays are declared in the same order in every process
            (
                s
                for s in expr.free_symbols
                if isinstance(s, sympy.Symbol) and not isinstance(s, Index | Local) and s not in labels
            ),
            key=lambda s: s.name,
        )
        return expr.xreplace({s: self.neuron_value(pop, s.name, where)[BATCH, J] for s in free})

    # ------------------------------------------------------------------ projections
    def eligibility_arrays(self, pe: ProjectionEprop) -> dict[str, tuple[Array, Array | None]]:
        """Each eligibility's array (per pre neuron or per synapse) and, for scope "pre", its next value."""
        out = {}
        for e in pe.eligibilities:
            pre = e.scope == "pre"
            shape = ("batch", self.size(pe.pre)) if pre else self.synapse_shape(pe)
            arr = self.add(
                Array(
                    array_name("ee", pe.projection, e.state),
                    Role.ELIGIBILITY,
                    pe.projection,
                    shape,
                    var=e.name,
                    comment=f"d{e.state}/dW" + (", one per pre neuron" if pre else ""),
                )
            )
            nxt = None
            if pre:
                nxt = self.add(
                    Array(
                        array_name("en", pe.projection, e.state),
                        Role.SCRATCH,
                        pe.projection,
                        shape,
                        var=e.name,
                        comment=f"next d{e.state}/dW",
                    )
                )
            out[e.name] = (arr, nxt)
        return out

    def zpre(self, pe: ProjectionEprop) -> Array:
        return self.add(
            Array(
                array_name("ezp", pe.projection),
                Role.SCRATCH,
                pe.projection,
                ("batch", self.size(pe.pre)),
                var=names.Z_PRE,
                comment="presynaptic spikes delivered this step",
            )
        )

    def zpre_phase(self, pe: ProjectionEprop) -> Phase:
        z = self.zpre(pe)
        spiked: tuple[Stmt, ...] = (Store(z[BATCH, I], ONE),)
        body: tuple[Stmt, ...] = ()
        if self.walks_post_major(pe.projection):
            # per synapse too (post-major), set and cleared along the rows of the pre neurons that
            # spike: the learning loop then reads it in order instead of gathering z_pre per synapse
            zs, at = self.synapse_z(pe), sympy.IndexedBase(self.post_position(pe.projection).name)
            row = {"j": J, "q": Q}
            body = (
                Loop(
                    Neurons(pe.pre),
                    (
                        If(
                            sympy.Ne(z[BATCH, I], ZERO),
                            (Loop(Row(pe.projection, I), (Store(zs[BATCH, at[Q]], ZERO),), row),),
                        ),
                    ),
                    {"j": I},
                    comment="the synapses of last step's spikes back to 0",
                ),
            )
            spiked += (Loop(Row(pe.projection, I), (Store(zs[BATCH, at[Q]], ONE),), row),)
        body += (
            Loop(Neurons(pe.pre), (Store(z[BATCH, I], ZERO),), {"j": I}),
            Loop(
                Spikes(pe.pre, STEP - 1 - pe.delay_steps),
                spiked,
                {"i": I},
                comment=f"spikes of {pe.pre} emitted {1 + pe.delay_steps} step(s) ago",
            ),
        )
        return Phase(f"zpre__{pe.projection}", PhaseKind.LEARN, body, f"z_pre of {pe.projection}, dense 0/1")

    def synapse_z(self, pe: ProjectionEprop) -> Array:
        """z_pre of each synapse of a post-major projection this step, at its post-major position."""
        return self.add(
            Array(
                array_name("ezs", pe.projection),
                Role.ELIGIBILITY,  # 0 at the start of every trial
                pe.projection,
                self.synapse_shape(pe),
                var=names.Z_PRE,
                comment="presynaptic spikes delivered this step, per synapse, post-major",
            )
        )

    def post_position(self, projection: str) -> Array:
        """The post-major position of each weight slot (`order__<P>` fills it)."""
        return self.structure("ecs", projection, ("nnz",), "post-major: the position of each weight slot")

    def gradient(self, pe: ProjectionEprop) -> Array:
        return self.add(
            Array(
                array_name("eg", pe.projection),
                Role.GRADIENT,
                pe.projection,
                self.synapse_shape(pe),
                comment="dL/dW per batch row",
            )
        )

    def pre_propagate(self, pe: ProjectionEprop) -> list[Stmt]:
        """Scope-"pre" eligibilities: their next value, once per presynaptic neuron."""
        eligs = self.eligibility_arrays(pe)
        pre = [e for e in pe.eligibilities if e.scope == "pre"]
        if not pre:
            return []
        known = {sym(names.Z_PRE): self.zpre(pe)[BATCH, I]}
        known |= {sym(e.name): eligs[e.name][0][BATCH, I] for e in pre}
        prop = {a.target: a.expr for a in pe.propagate}
        body = tuple(
            Store(
                eligs[e.name][1][BATCH, I],
                self.bind(prop[e.name], pe.post, START, known, pe.projection),
                comment=f"propagate {e.name}",
            )
            for e in pre
        )
        return [Loop(Neurons(pe.pre), body, {"j": I}, comment=f"{pe.projection}: per pre neuron")]

    def pre_commit(self, pe: ProjectionEprop) -> list[Stmt]:
        eligs = self.eligibility_arrays(pe)
        body = tuple(
            Store(eligs[e.name][0][BATCH, I], eligs[e.name][1][BATCH, I])
            for e in pe.eligibilities
            if e.scope == "pre"
        )
        return [Loop(Neurons(pe.pre), body, {"j": I})] if body else []

    def synapse_values(self, pe: ProjectionEprop) -> tuple[list[Stmt], dict, dict]:
        """Lets for z_pre and the old (and, for scope "pre", next) eligibilities of synapse (i, j):
        the symbols of the start-of-step expressions and those of the spike phase."""
        eligs = self.eligibility_arrays(pe)
        z = self.synapse_z(pe)[BATCH, S] if self.walks_post_major(pe.projection) else self.zpre(pe)[BATCH, I]
        lets: list[Stmt] = [Let(Local("__z_pre"), z)]
        old = {sym(names.Z_PRE): Local("__z_pre")}
        new: dict[sympy.Symbol, sympy.Expr] = {}
        for e in pe.eligibilities:
            arr, nxt = eligs[e.name]
            if e.scope == "pre":
                lets.append(Let(Local(f"{e.name}__old"), arr[BATCH, I]))
                lets.append(Let(Local(f"{e.name}__new"), nxt[BATCH, I]))
            else:
                lets.append(Let(Local(f"{e.name}__old"), self.at_synapse(arr, pe.projection)))
            old[sym(e.name)] = Local(f"{e.name}__old")
            new[sym(e.name)] = Local(f"{e.name}__new")
        return lets, old, new

    def propagate_synapses(self, pe: ProjectionEprop, old: dict) -> list[Stmt]:
        prop = {a.target: a.expr for a in pe.propagate}
        return [
            Let(
                Local(f"{e.name}__new"),
                self.bind(prop[e.name], pe.post, START, old, pe.projection),
                f"propagate {e.name}",
            )
            for e in pe.eligibilities
            if e.scope != "pre"
        ]

    def hidden_projection(self, pe: ProjectionEprop) -> Loop:
        """Propagate, trace, accumulate, filter and jump for every synapse of a hidden projection."""
        eligs = self.eligibility_arrays(pe)
        lets, old, new = self.synapse_values(pe)
        body = [*lets, *self.propagate_synapses(pe, old)]
        e, ebar = Local(f"{pe.trace_name}"), Local(f"{pe.filtered_name}")
        filtered = self.add(
            Array(
                array_name("ef", pe.projection),
                Role.ELIGIBILITY,
                pe.projection,
                self.synapse_shape(pe),
                var=pe.filtered_name,
                comment="low-pass filtered eligibility trace",
            )
        )
        spike = {**new, sym(pe.trace_name): e, sym(pe.filtered_name): ebar}
        body.append(Let(e, self.bind(pe.trace, pe.post, SPIKE, spike, pe.projection), "eligibility trace"))
        body.append(
            Let(ebar, self.at_synapse(filtered, pe.projection), "filtered trace before this step's filter")
        )
        body.append(
            Store(
                self.at_synapse(self.trial_gradient(pe), pe.projection),
                self.bind(pe.accumulate, pe.post, SPIKE, spike, pe.projection),
                "+=",
            )
        )
        body.append(
            Store(
                self.at_synapse(filtered, pe.projection),
                self.bind(pe.filter.expr, pe.post, SPIKE, spike, pe.projection),
            )
        )
        jumped = {a.target: a.expr for a in pe.jump}
        for el in pe.eligibilities:
            if el.scope == "pre":
                if el.name in jumped:
                    raise AssertionError(f"e-prop: eligibility {el.name} is jumped but marked 'pre'")
                continue
            value = (
                self.bind(jumped[el.name], pe.post, SPIKE, spike, pe.projection)
                if el.name in jumped
                else Local(f"{el.name}__new")
            )
            body.append(
                Store(
                    self.at_synapse(eligs[el.name][0], pe.projection),
                    value,
                    comment="jump" if el.name in jumped else "",
                )
            )
        if self.walks_post_major(pe.projection):
            space = self.post_order(pe.projection)
            return Loop(space, pruned(body), dict(POST_MAJOR_VARS), comment=f"{pe.projection}, post-major")
        return Loop(Synapses(pe.projection), pruned(body), dict(SYNAPSE_VARS), comment=pe.projection)

    def output_propagate(self, pe: ProjectionEprop) -> list[Stmt]:
        eligs = self.eligibility_arrays(pe)
        lets, old, _ = self.synapse_values(pe)
        props = self.propagate_synapses(pe, old)
        if not props:
            return []
        stores = [
            Store(self.at_synapse(eligs[e.name][0], pe.projection), Local(f"{e.name}__new"))
            for e in pe.eligibilities
            if e.scope != "pre"
        ]
        body = pruned([*lets, *props, *stores])
        return [Loop(Synapses(pe.projection), body, dict(SYNAPSE_VARS), comment=pe.projection)]

    def output_accumulate(self, pe: ProjectionEprop) -> Loop:
        eligs = self.eligibility_arrays(pe)
        lets: list[Stmt] = []
        new = {}
        for e in pe.eligibilities:
            arr, nxt = eligs[e.name]
            value = nxt[BATCH, I] if e.scope == "pre" else self.at_synapse(arr, pe.projection)
            lets.append(Let(Local(f"{e.name}__new"), value))
            new[sym(e.name)] = Local(f"{e.name}__new")
        grad = Store(
            self.at_synapse(self.gradient(pe), pe.projection),
            self.bind(pe.accumulate, pe.post, SPIKE, new, pe.projection),
            "+=",
        )
        body = pruned([*lets, grad])
        return Loop(Synapses(pe.projection), body, dict(SYNAPSE_VARS), comment=f"dW of {pe.projection}")

    # ------------------------------------------------------------------ trained params
    def param_arrays(self, pe: ParamEprop) -> dict[str, Array]:
        """Each eligibility of a trained param, one per neuron: `eep_<owner>__<param>__<state>` (the
        owner is the population, or the projection of a synapse param)."""
        return {
            e.name: self.add(
                Array(
                    array_name("eep", pe.owner, pe.param, e.state),
                    Role.ELIGIBILITY,
                    pe.population,
                    ("batch", self.size(pe.population)),
                    var=e.name,
                    comment=f"d{e.state}/d{pe.param}",
                )
            )
            for e in pe.eligibilities
        }

    def param_gradient(self, pe: ParamEprop) -> Array:
        """dL/dp per trial and neuron, filed like the param's array (the runtime sums a shared one)."""
        return self.add(
            Array(
                array_name("egp", pe.owner, pe.param),
                Role.GRADIENT,
                pe.owner,
                ("batch", self.size(pe.population)),
                var=pe.param,
                comment=f"dL/d{pe.param} per batch row and neuron",
            )
        )

    def hidden_param(self, pe: ParamEprop) -> Loop:
        """Propagate, trace, accumulate, filter and jump of a hidden neuron's trained param."""
        pop, arrays = pe.population, self.param_arrays(pe)
        lets = [Let(Local(f"{e}__old"), a[BATCH, J]) for e, a in arrays.items()]
        old = {sym(e): Local(f"{e}__old") for e in arrays}
        new = {sym(e): Local(f"{e}__new") for e in arrays}
        prop = {a.target: a.expr for a in pe.propagate}
        body: list[Stmt] = [*lets]
        body += [
            Let(Local(f"{e}__new"), self.bind(prop[e], pop, START, old, pe.projection), f"propagate {e}")
            for e in arrays
        ]
        e, ebar = Local(pe.trace_name), Local(pe.filtered_name)
        filtered = self.add(
            Array(
                array_name("efp", pe.owner, pe.param),
                Role.ELIGIBILITY,
                pop,
                ("batch", self.size(pop)),
                var=pe.filtered_name,
                comment=f"low-pass filtered eligibility trace of {pe.param}",
            )
        )
        spike = {**new, sym(pe.trace_name): e, sym(pe.filtered_name): ebar}
        body.append(Let(e, self.bind(pe.trace, pop, SPIKE, spike), "eligibility trace"))
        body.append(Let(ebar, filtered[BATCH, J], "filtered trace before this step's filter"))
        body.append(
            Store(self.param_gradient(pe)[BATCH, J], self.bind(pe.accumulate, pop, SPIKE, spike), "+=")
        )
        body.append(Store(filtered[BATCH, J], self.bind(pe.filter.expr, pop, SPIKE, spike)))
        jumped = {a.target: a.expr for a in pe.jump}
        for name, a in arrays.items():
            value = self.bind(jumped[name], pop, SPIKE, spike) if name in jumped else new[sym(name)]
            body.append(Store(a[BATCH, J], value, comment="jump" if name in jumped else ""))
        return Loop(Neurons(pop), pruned(body), {"j": J}, comment=f"trained param {pe.param}")

    def output_param_propagate(self, pe: ParamEprop) -> Loop:
        arrays = self.param_arrays(pe)
        return self.propagate_output(
            arrays, pe.propagate, pe.population, f"eligibility of {pe.param}", pe.projection
        )

    def propagate_output(
        self,
        arrays: dict[str, Array],
        propagate: tuple,
        pop: str,
        comment: str,
        projection: str | None = None,
    ) -> Loop:
        """An output neuron's eligibilities one step on, simultaneously (each reads the old values)."""
        old = {sym(e): Local(f"{e}__old") for e in arrays}
        lets = [Let(Local(f"{e}__old"), a[BATCH, J]) for e, a in arrays.items()]
        prop = {a.target: a.expr for a in propagate}
        stores = [
            Store(a[BATCH, J], self.bind(prop[e], pop, START, old, projection), comment=f"propagate {e}")
            for e, a in arrays.items()
        ]
        return Loop(Neurons(pop), (*lets, *stores), {"j": J}, comment=comment)

    def output_param_accumulate(self, pe: ParamEprop) -> Loop:
        new = {sym(e): a[BATCH, J] for e, a in self.param_arrays(pe).items()}
        grad = Store(
            self.param_gradient(pe)[BATCH, J], self.bind(pe.accumulate, pe.population, SPIKE, new), "+="
        )
        return Loop(Neurons(pe.population), (grad,), {"j": J}, comment=f"dL/d{pe.param}")

    def params_of(self, pop: str) -> list[ParamEprop]:
        return [pe for pe in self.ir.params.values() if pe.population == pop]

    # ------------------------------------------------------------------ populations
    def output(self, oe: OutputEprop) -> Phase:
        pop, n = oe.population, self.size(oe.population)
        projections = [pe for pe in self.ir.projections.values() if pe.role == "output" and pe.post == pop]
        yv = self.per_neuron("ey", pop, oe.var, Role.SCRATCH)
        self.tap(pop, yv, sym(oe.var), "update", f"readout value {oe.var} this step")
        error = self.neuron_value(pop, names.ERROR, SPIKE)
        body: list[Stmt] = []
        for pe in projections:
            body += self.pre_propagate(pe)
            body += self.output_propagate(pe)
        bias = oe.bias
        if bias is not None:
            body.append(self.bias_propagate(oe, bias))
        body += [self.output_param_propagate(pe) for pe in self.params_of(pop)]
        reds = {}
        for k, (name, kind, expr) in enumerate(oe.reductions):
            red = self.add(
                Array(
                    array_name("er", pop, str(k)),
                    Role.SCRATCH,
                    pop,
                    ("batch",),
                    var=name,
                    comment=f"{kind} over {pop}",
                )
            )
            x = sympy.sympify(expr).xreplace({sym(oe.var): yv[BATCH, J], **reds})
            here = red[BATCH]
            init = sympy.S.NegativeInfinity if kind == "max" else ZERO
            update = sympy.Max(here, x) if kind == "max" else here + x
            body.append(Store(here, init, comment=f"{name} = {kind} over the population"))
            body.append(Loop(Neurons(pop), (Store(here, update),), {"j": J}))
            reds[sym(name)] = here
        label = self.add(
            Array(
                array_name("et", pop),
                Role.TARGET,
                pop,
                ("batch",),
                "int32",
                var="label",
                comment="label (-1: none)",
            )
        )
        ytrue = Local("__y_true")
        if oe.loss == "sparse_categorical_crossentropy":
            truth = sympy.Piecewise((ONE, sympy.Eq(J, label[BATCH])), (ZERO, True))
        else:
            values = self.add(
                Array(
                    array_name("etv", pop),
                    Role.TARGET,
                    pop,
                    ("batch", "steps", n),
                    var="value",
                    comment="targets per step",
                )
            )
            truth = values[BATCH, STEP, J]
        on = sympy.And(label[BATCH] >= 0, STEP >= oe.error_start_step)
        if oe.error_stop_step is not None:
            on = sympy.And(on, STEP < oe.error_stop_step)
        err = sympy.sympify(oe.error).xreplace({sym(oe.var): yv[BATCH, J], **reds, sym(names.Y_TRUE): ytrue})
        body.append(
            Loop(
                Neurons(pop),
                (
                    Let(ytrue, truth),
                    Store(error[BATCH, J], sympy.Piecewise((err, on), (ZERO, True)), comment="error E"),
                ),
                {"j": J},
            )
        )
        for pe in projections:
            body.append(self.output_accumulate(pe))
        if bias is not None:
            body.append(self.bias_accumulate(oe, bias))
        body += [self.output_param_accumulate(pe) for pe in self.params_of(pop)]
        for pe in projections:
            body += self.pre_commit(pe)
        return Phase(f"learn__{pop}", PhaseKind.LEARN, tuple(body), f"e-prop of output {pop}: {oe.loss}")

    def bias_arrays(self, oe: OutputEprop, bias: ProjectionEprop) -> dict[str, Array]:
        return {
            e.name: self.per_neuron("eeb", oe.population, e.name, Role.ELIGIBILITY, e.state)
            for e in bias.eligibilities
        }

    def bias_propagate(self, oe: OutputEprop, bias: ProjectionEprop) -> Loop:
        arrays = self.bias_arrays(oe, bias)
        return self.propagate_output(arrays, bias.propagate, oe.population, "output bias eligibility")

    def bias_accumulate(self, oe: OutputEprop, bias: ProjectionEprop) -> Loop:
        arrays = self.bias_arrays(oe, bias)
        grad = self.per_neuron("egb", oe.population, "bias", Role.GRADIENT, "bias")
        new = {sym(e): a[BATCH, J] for e, a in arrays.items()}
        return Loop(
            Neurons(oe.population),
            (Store(grad[BATCH, J], self.bind(bias.accumulate, oe.population, SPIKE, new), "+="),),
            {"j": J},
            comment="dL/dbias",
        )

    def signal(self, he: HiddenEprop) -> Phase:
        """`L_j = Σ_terms c Σ_k B_jk E_k`, from this step's errors of the outputs."""
        pop = he.population
        body: list[Stmt] = []
        total = sympy.S.Zero
        for t in he.learning:
            fb = self.add(
                Array(
                    array_name("efb", t.projection),
                    Role.SCRATCH,
                    t.projection,
                    ("batch", self.size(pop)),
                    var=names.feedback(t.projection),
                    comment=f"sum_k B_jk E_k over {t.output}",
                )
            )
            if t.feedback == "random":
                b = self.add(
                    Array(
                        array_name("eB", t.projection),
                        Role.FEEDBACK,
                        t.projection,
                        (self.size(pop), self.size(t.output)),
                        comment="fixed random feedback",
                    )
                )[I, J]
            else:
                b = element(array_name("w", t.projection), Q)  # B = the current weights, transposed
            errors = self.neuron_value(t.output, names.ERROR, SPIKE)[BATCH, J]
            body.append(Loop(Neurons(pop), (Store(fb[BATCH, I], ZERO),), {"j": I}))
            add = (Store(fb[BATCH, I], b * errors, "+="),)
            comment = f"feedback of {t.output}'s errors ({t.feedback})"
            if t.feedback == "random" and self.sparse(t.projection):
                # B is dense whatever the forward structure: every (hidden, output) pair, not the
                # synapses a sparse projection happens to have (which Deep R moves)
                pairs = Loop(
                    Neurons(pop), (Loop(Neurons(t.output), add, {"j": J}),), {"j": I}, comment=comment
                )
                body.append(pairs)
            else:
                body.append(Loop(Synapses(t.projection), add, dict(SYNAPSE_VARS), comment=comment))
            total = total + sympy.Float(float(t.scale)) * fb[BATCH, J]
        signal = self.neuron_value(pop, names.LEARNING_SIGNAL, SPIKE)
        body.append(Loop(Neurons(pop), (Store(signal[BATCH, J], total),), {"j": J}))
        return Phase(f"signal__{pop}", PhaseKind.LEARN, tuple(body), f"learning signal of {pop}")

    def hidden(self, he: HiddenEprop) -> Phase:
        pop = he.population
        projections = [pe for pe in self.ir.projections.values() if pe.role == "hidden" and pe.post == pop]
        self.f_avg(pop)
        body: list[Stmt] = []
        for pe in projections:
            body += self.pre_propagate(pe)
        for pe in projections:
            body.append(self.hidden_projection(pe))
        body += [self.hidden_param(pe) for pe in self.params_of(pop)]
        for pe in projections:
            body += self.pre_commit(pe)
        return Phase(f"learn__{pop}", PhaseKind.LEARN, tuple(body), f"e-prop of hidden {pop}")


def schedule_eprop(
    network: Network, precision: str = "float", event_buffer: int = 0, post_major: bool = False
) -> Kernel:
    """The kernel of a specialised network carrying an `EpropIR`: the forward kernel with its entry
    `run`, and the entry `eprop_run`, which also accumulates the gradients (see the module doc).

    `post_major`: the learning loops of sparse projections into hidden populations walk their
    synapses post neuron by post neuron (`PostSynapses`), with their per-synapse arrays in that
    order; a prepare phase `order__<P>` sorts the CSR structure so once per batch, and an after
    phase `gradient__<P>` puts each trial's gradient back in weight-slot order. Same arithmetic per
    synapse, so the same results; for a backend that lays out its per-synapse arrays itself, off."""
    ir = network.training
    if not isinstance(ir, EpropIR):
        raise ValueError("schedule_eprop needs the eprop pass to have run")
    if network.specialised is None:
        raise ValueError("schedule_eprop needs the specialise pass to have run")
    s = _Schedule(network, ir, post_major=post_major)
    zpre = [s.zpre_phase(pe) for pe in ir.projections.values()]
    learn = {oe.population: s.output(oe) for oe in ir.outputs.values()}
    signals = {he.population: s.signal(he) for he in ir.hidden.values()}
    learn |= {he.population: s.hidden(he) for he in ir.hidden.values()}
    forward = schedule_forward(network, precision=precision, event_buffer=event_buffer)
    tapped = schedule_forward(network, precision=precision, event_buffer=event_buffer, taps=s.taps)
    steps = [p.name for p in forward.phases if p.kind == PhaseKind.FORWARD]
    trained = [*ir.outputs, *ir.hidden]
    order = [p.name for p in zpre]
    order += [n for n in steps if n.startswith(("deliver_", "generate_"))]
    order += [n for n in steps if n.startswith("step_") and n[len("step_") :] not in trained]
    taps = []
    for pop in trained:
        step = dataclasses.replace(tapped.phase(f"step_{pop}"), name=f"learn_step__{pop}")
        taps.append(step)
        order += [*([signals[pop].name] if pop in signals else []), step.name, learn[pop].name]
    walked = [p for p in ir.projections if s.walks_post_major(p)]
    prepare = [s.post_order_phase(p) for p in walked]
    after = [s.gradient_phase(p) for p in walked]
    reset = _reset_phase(s.arrays.values())
    return dataclasses.replace(
        forward,
        arrays=(*forward.arrays, *s.arrays.values()),
        phases=(*forward.phases, *prepare, reset, *zpre, *taps, *signals.values(), *learn.values(), *after),
        # the forward's `before` (its reset, and the derived params of per-neuron synapse params),
        # then the eligibilities' and gradients' reset
        entries=(
            *forward.entries,
            Entry(
                "eprop_run",
                prepare=tuple(p.name for p in prepare),
                before=(*forward.entries[0].before, reset.name),
                per_step=tuple(order),
                after=tuple(p.name for p in after),
            ),
        ),
    )


def _reset_phase(arrays: Iterable[Array]) -> Phase:
    """Every eligibility and per-trial gradient of the trial back to 0, element by element."""
    q = Index("q")
    body = tuple(
        Loop(Elements(a.name), (Store(trial_element(a, BATCH, q), ZERO),), {"q": q})
        for a in arrays
        if a.role in (Role.ELIGIBILITY, Role.GRADIENT) and a.shape[:1] == ("batch",)
    )
    return Phase("reset__eprop", PhaseKind.RESET, body, "eligibilities and this trial's gradients to 0")


def eprop_kernel(
    network: Network, precision: str = "float", event_buffer: int = 0, post_major: bool = False
) -> Kernel:
    """Specialise, schedule and verify (an invalid kernel is an internal error)."""
    from snnc.ir.kernel import verify_kernel

    from .specialise import specialise

    kernel = schedule_eprop(
        specialise(network), precision=precision, event_buffer=event_buffer, post_major=post_major
    )
    problems = verify_kernel(kernel)
    if problems:
        raise AssertionError("the e-prop schedule made an invalid kernel:\n" + "\n".join(problems))
    return dataclasses.replace(
        kernel, interface={**kernel.interface, "eprop": eprop_interface(network.training)}
    )


def eprop_interface(ir: EpropIR) -> dict[str, Any]:
    """What a loader needs to drive `eprop_run`: the options, each output's loss and readout (to hand
    it targets), the trained projections and the trained output biases (to name the gradients)."""
    return {
        "options": {k: getattr(ir.options, k) for k in ir.options.__dataclass_fields__},
        "outputs": {
            o.population: {"loss": o.loss, "readout": o.readout, "var": o.var} for o in ir.outputs.values()
        },
        "projections": sorted(ir.projections),
        "biases": {
            names.param_key("bias", o.population): o.population
            for o in ir.outputs.values()
            if o.bias is not None
        },
    }


__all__ = ["eprop_interface", "eprop_kernel", "schedule_eprop"]
