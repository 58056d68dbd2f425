"""Trainable per-connection delays in the kernel IR: their forward delivery and EventProp's backward walk.

A projection declared with `delay = Trainable(...)` holds one delay per connection, d_q in ms (the
PARAM array `pp_<P>__delay`, shaped like the weights, trained and clipped to [min, max] like them).

Forward (as mlGeNN's EventProp with delays, Mészáros et al. 2025, rounds delays to whole steps): each
delay becomes s_q = clamp(round(d_q / dt), 0, S - 1) steps, S - 1 = round(max / dt).
A spike of pre neuron i emitted in step k - 1 adds w_q to its post neuron's slot of step k + s_q in a
dendritic ring buffer of S slots (`dl_<P>__buffer`, [batch, S · post], slot-major); in step k each
post neuron applies the synapse's on_pre once, with w = the sum that arrives, and empties the slot.
on_pre must add w times a constant (what EventProp needs anyway), which makes one on_pre with the sum
the same as one per spike: the delivery of step k carries the spikes emitted at k - 1 - s_q, exactly
as a fixed delay of s_q steps would.

The rings are flat per trial and each connection keeps its element's offset o_q = s_q · post + j
(`dl_<P>__steps`, int32), so a delivery adds one offset to the step's row, k mod S times post, and
wraps it with one compare: the synapse loops index 32-bit offsets from a per-trial base, which a
vectorising compiler turns into gathers and scatters of 16 lanes instead of 8 (64-bit indices).
Delays change only at the optimiser step, so the offsets are computed once per batch, before the
trials (the `prepare` phase of the run and backward entries), and every trial reads the same array.

Backward, at step k (events at t = (k+1)·dt, λ⁺ before the jumps of the step): each post neuron puts
what an arrival at this instant needs into rings of S slots (`ep_<P>__ring_g`: g of D = Σ w g and of
the delay gradient w·g; `ep_<P>__ring_e`: the weight gradient's λ·e; flat like the delay buffer);
then, for each pre spike of step k, connection q reads the element o_q past the row of step k (mod
S · post): the values at its own arrival, which the backward pass (running from T down) has already
passed. Slots of steps ≥ K stay zero: those arrivals never happen forward.
Per connection: ∂L/∂w_q += ring_e, D_i += w_q·ring_g, ∂L/∂d_q += w_q·ring_g (`DelayGradient`: moving
an arrival later by δs leaves the post state on its pre-jump trajectory for δs longer).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sympy
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    Index,
    Let,
    Local,
    Loop,
    Neurons,
    Role,
    Row,
    Slots,
    Spikes,
    Stmt,
    Store,
)
from snnc.ir.model import Network, Projection
from snnc.ir.names import array as array_name
from snnc.ir.symbols import WEIGHT, sym

PRE, J, Q = Index("i"), Index("j"), Index("q")
ZERO = sympy.Float(0.0)
CODE = "E-DELAY"


def learnable(network: Network, projection: str) -> bool:
    return network.projections[projection].delay_trainable is not None


def slots(network: Network, projection: str) -> int:
    """Ring slots: the longest delay in steps, plus one."""
    return network.specialised.projections[projection].max_delay_steps + 1


def delay_array(network: Network, proj: Projection, weight: Array) -> Array:
    return Array(
        array_name("pp", proj.name, "delay"),
        Role.PARAM,
        proj.name,
        weight.shape,
        var="delay",
        comment=f"trained delay (ms) per connection, at most {proj.delay_trainable.max:g} ms",
    )


def flat_size(weight: Array) -> int | str:
    """The number of weight slots: `nnz` for a drawn structure, else the product of the shape."""
    if "nnz" in weight.shape:
        return "nnz"
    return int(math.prod(weight.shape))


def ring_size(network: Network, proj: Projection) -> int:
    """Elements of one trial's ring (S slots of one value per post neuron): it must fit 32-bit offsets."""
    size = slots(network, proj.name) * network.populations[proj.post].size
    if size >= 2**31:
        raise DiagnosticError(
            Diagnostic(
                CODE,
                f"projection '{proj.name}': its delay ring ({size} elements: the longest delay in steps, "
                f"plus one, times the {network.populations[proj.post].size} post neurons) is too large",
                proj.delay_trainable.span or proj.span,
                hint="lower the delay's max, or use a larger dt",
            )
        )
    return size


def steps_array(proj: Projection, weight: Array) -> Array:
    return Array(
        array_name("dl", proj.name, "steps"),
        Role.SCRATCH,
        proj.name,
        (flat_size(weight),),
        "int32",
        var="delay_steps",
        comment="each connection's ring offset (delay in steps times the post size, plus j), once per batch",
    )


def row_of_step(n_post: int, S: int) -> sympy.Expr:
    """The first ring element of this step's slot, (k mod S) · post."""
    return sympy.Mod(STEP, S) * n_post


def ahead(now: Local, offset: Local, size: int) -> sympy.Expr:
    """(now + o) mod size from 0 <= now, o < size: one compare, not a division per synapse."""
    return sympy.Piecewise((now + offset - size, now + offset >= size), (now + offset, True))


def offset_of(steps: Array, local: str = "__offset") -> tuple[Let, Local]:
    """The connection's ring offset o_q = s_q · post + j, as an integer local."""
    o = Local(local, integer=True, nonnegative=True)
    return Let(o, steps[Q], "the connection's ring offset: its delay's slot and post neuron"), o


def _require_additive(network: Network, proj: Projection, on_pre) -> None:  # noqa: ANN001
    """One on_pre with the summed weight equals one per spike only if it adds w times a constant."""
    w = sym(WEIGHT)
    states = {sym(s) for s in network.models[proj.synapse].states}
    for a in on_pre:
        delta = sympy.expand(a.as_value(sym(a.target)) - sym(a.target))
        c = sympy.diff(delta, w)
        if delta.xreplace({w: 0}) != 0 or w in c.free_symbols or c.free_symbols & states:
            raise DiagnosticError(
                Diagnostic(
                    CODE,
                    f"projection '{proj.name}' has trainable delays, so its synapse's on_pre "
                    f"'{a.target} {a.op} {a.expr}' must add w times a constant (arrivals of a step are "
                    "delivered summed)",
                    proj.delay_trainable.span or proj.span,
                )
            )


def deliver(
    b,  # noqa: ANN001  (schedule_forward's builder: add, network, derived, resets)
    proj: Projection,
    weight: sympy.Expr,
    states: dict[str, Array],
    env: dict[sympy.Symbol, sympy.Expr],
    on_pre,  # noqa: ANN001
) -> tuple[Stmt, ...]:
    """The deliver phase's body for a projection with trainable delays (see the module docstring)."""
    net = b.network
    _require_additive(net, proj, on_pre)
    w_array = next((a for a in b.arrays if a.role == Role.WEIGHT and a.owner == proj.name), None)
    if w_array is None or not isinstance(weight, sympy.Indexed):
        raise DiagnosticError(
            Diagnostic(
                CODE,
                f"projection '{proj.name}' has fixed weights, so it cannot have trainable delays",
                proj.delay_trainable.span or proj.span,
            )
        )
    S = slots(net, proj.name)
    n_post = net.populations[proj.post].size
    size = ring_size(net, proj)
    delay = b.add(delay_array(net, proj, w_array))
    steps = b.add(steps_array(proj, w_array))
    buffer = b.add(
        Array(
            array_name("dl", proj.name, "buffer"),
            Role.SCRATCH,
            proj.name,
            ("batch", size),
            var="delay_buffer",
            comment=f"summed weights arriving at each post neuron in the next {S} steps (slot-major)",
        )
    )
    dt = sympy.Float(net.dt, 17)
    rounded = sympy.floor(delay[Q] / dt + sympy.Rational(1, 2))
    clamped = sympy.Piecewise((0, rounded < 0), (S - 1, rounded > S - 1), (rounded, True))
    # the first store is the delay in steps alone, from the delays in ms: a backend that keeps no
    # offsets (GeNN, backends/genn/delay_printer.py) prints it per connection and checks the rings'
    # elements through what the later stores make of it
    b.prepare.append(
        Loop(
            _synapses(proj.name),
            (
                Store(steps[Q], clamped, comment="round(d / dt), within [0, max]"),
                Store(steps[Q], steps[Q] * n_post + J, comment="the slot's row, plus j"),
            ),
            comment=f"ring offsets of the delays of {proj.name}",
        )
    )
    b.resets += clear(buffer, f"no spike of {proj.pre} on its way to {proj.post}")
    let, o = offset_of(steps)
    now = Local("__now", integer=True, nonnegative=True)
    slot = Local("__slot", integer=True, nonnegative=True)
    scatter = Loop(
        Spikes(proj.pre, STEP - 1),
        (
            Let(now, row_of_step(n_post, S), "this step's row of the ring"),
            Loop(
                Row(proj.name, PRE),
                (
                    let,
                    Let(slot, ahead(now, o, size), "its element of the ring, s steps ahead"),
                    Store(buffer[BATCH, slot], weight, "+=", "arrives in s steps"),
                ),
                {"j": J, "q": Q},
                independent=True,
            ),
        ),
        {"i": PRE},
        comment=f"the spikes of {proj.pre} emitted last step, onto the delay buffer",
    )
    arrived = Local("__arrived")
    here = buffer[BATCH, row_of_step(n_post, S) + J]
    env = {**env, sym(WEIGHT): arrived}
    apply = [Let(arrived, here, "the weights arriving now, summed")]
    apply += [
        Store(states[a.target][BATCH, J], a.as_value(sym(a.target)).xreplace(env), comment=f"on_pre {a}")
        for a in on_pre
    ]
    apply.append(Store(here, ZERO, comment="the slot is free again"))
    return (scatter, Loop(Neurons(proj.post), tuple(apply), {"j": J}, comment="arrivals of this step"))


def _synapses(projection: str):  # noqa: ANN202
    from snnc.ir.kernel import Synapses

    return Synapses(projection)


def backward_events(
    bb,  # noqa: ANN001  (schedule_eventprop's builder)
    proj: Projection,
    known: dict[str, Array],
    per_post: dict[str, sympy.Expr],
    prologue: list[Stmt],
    grad_shape: tuple,
    cursor: str,
    lowered: Callable[[sympy.Expr, str], sympy.Expr],
) -> tuple[tuple[Stmt, ...], list[Array]]:
    """The backward events of a projection with trainable delays: `per_post` holds (over post index
    M = `j` of a Neurons loop, after `prologue`'s λ locals) the values "g" and "e" an arrival reads;
    returns the phase body and the new arrays (rings, the delay gradient)."""
    from snnc.ir.kernel import Events

    net = bb.network
    S = slots(net, proj.name)
    n_post = net.populations[proj.post].size
    size = ring_size(net, proj)
    m = Index("m")
    new: list[Array] = []
    rings: dict[str, Array] = {}
    fill = list(prologue)
    for key, expr in per_post.items():
        ring = Array(
            array_name("ep", proj.name, "ring", key),
            Role.SCRATCH,
            proj.name,
            ("batch", size),
            var=f"ring_{key}",
            comment=f"{key} per post neuron at each of the next {S} arrival steps (slot-major)",
        )
        new.append(ring)
        rings[key] = ring
        fill.append(
            Store(ring[BATCH, row_of_step(n_post, S) + m], lowered(expr, key), comment=f"{key} at this step")
        )
    steps = known[array_name("dl", proj.name, "steps")]
    weight = known[array_name("w", proj.name)][Q]
    grad = Array(
        array_name("ep", proj.name, "grad"),
        Role.GRADIENT,
        proj.name,
        grad_shape,
        comment="dL/dw per trial, flat like the weights",
    )
    dgrad = Array(
        array_name("ep", proj.name, "dgrad"),
        Role.GRADIENT,
        proj.name,
        grad_shape,
        var="delay",
        comment="dL/d(delay) per trial, flat like the delays",
    )
    let, o = offset_of(steps)
    slot = Local("__slot", integer=True, nonnegative=True)
    now = Local("__now", integer=True, nonnegative=True)
    body: list[Stmt] = [let, Let(slot, ahead(now, o, size), "the ring element of this connection's arrival")]
    if "e" in rings and proj.name in bb.training.weight_gradients:
        new.append(grad)
        body.append(Store(grad[BATCH, Q], rings["e"][BATCH, slot], "+=", "dL/dw at the arrival"))
    if "g" in rings:
        wg = Local("__wg")
        body.append(Let(wg, weight * rings["g"][BATCH, slot], "w g at the arrival"))
        if proj.name in bb.training.transmissions:
            sl = bb.lists[proj.pre]
            body.append(Store(sl.D[BATCH, Index("e")], wg, "+=", "D_n += w g"))
        new.append(dgrad)
        body.append(Store(dgrad[BATCH, Q], wg, "+=", "dL/dd = λ·(f(x) − f(x + w e)) = w g"))
    walk = Loop(
        Events(proj.pre, STEP, cursor),
        (
            Let(now, row_of_step(n_post, S), "this step's row of the rings"),
            Loop(Row(proj.name, PRE), tuple(body), {"j": J, "q": Q}),
        ),
        {"e": Index("e"), "i": PRE},
        comment=f"the spikes of {proj.pre} of step k, each connection at its own arrival",
    )
    fill_loop = Loop(Neurons(proj.post), tuple(fill), {"j": m}, comment="what an arrival at this step reads")
    return (fill_loop, walk), new


def clear(ring: Array, comment: str) -> list[Stmt]:
    """Every element of a ring ([batch, S · post]) to 0: a delay buffer before a trial; the backward
    rings at T, since arrivals after the trial's end contribute nothing."""
    r = Index("r")
    return [Loop(Slots(ring.owner, ring.shape[1]), (Store(ring[BATCH, r], ZERO),), {"r": r}, comment=comment)]
