"""The learning schedule: the loss and the optimiser step of a trained network, as kernel phases.

Without it every batch goes back to Python for the loss, its gradient dL/dy and the optimiser step
(several numpy calls each): at batch 1 that cost several times the simulation itself. With it one
batch is a few calls into the artefact, each a phase of the kernel IR that every backend prints:

- `loss_<pop>` (a LOSS phase, once per trial after the forward pass): softmax cross-entropy of the
  readout against the trial's label; writes the trial's loss, whether its arg-max is the label, and,
  for EventProp, dL/dy (the TARGET the backward pass reads, which the runtime would otherwise fill);
- `gather_<key>` (UPDATE, once per batch): the real trials' gradients summed, in trial order, into
  one array per weight or trained param: the runtime checks it for NaN/Inf before any weight moves;
- `step_<key>` (UPDATE): Adam or SGD with momentum on those sums, then the key's bounds.

With a backward pass, the entry `train` chains `run`, `loss` and `backward` per trial and then
gathers: one call per batch, handed to the threads once instead of three times (each hand-out to a
sleeping team cost more than a small network's batch gains from a second thread). Each trial's
gradient still lands in its own row, which `gather` sums in trial order, so the sums are those of
the three calls. A backward pass that reads a batch-wide target (the spike-count regulariser's sums
over every trial's forward pass, which the runtime adds up, over the ranks too) gets no `train`.

The gradients come from EventProp's `backward` or, for e-prop, from the forward entry `eprop_run`,
which accumulates them online; e-prop reads the labels during that run, so its loss phase reads
e-prop's own label array instead of a second one, and writes no dL/dy (nothing reads it).

Hyperparameters are data, not constants: the runtime writes the learning rate (after schedules),
the moments' decay rates and Adam's bias corrections into one INPUT array before each step, and each
key's learning-rate factor and bounds into another. The optimiser's moments are OPTIMISER arrays
that the runtime binds to its own optimiser's buffers, so checkpoints and `--resume` see them.

Only what the kernel can compute exactly like the runtime is scheduled: sparse categorical
cross-entropy on value readouts ([batch, n]) and Adam or SGD. Any other loss, a first-spike-time
readout or a per-step readout keeps the runtime's loop (`Kernel` without these phases).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import sympy
from snnc.ir.kernel import (
    BATCH,
    Array,
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
    Role,
    Store,
    Trials,
    trial_element,
    verify_kernel,
    walk,
)
from snnc.ir.model import Network
from snnc.ir.names import array as array_name
from snnc.ir.names import param_key

#: the loss the kernel computes, and its keyword arguments
SCHEDULED_LOSS = "sparse_categorical_crossentropy"
LOSS_ARGS = frozenset({"temperature"})
#: optimisers the kernel steps; the runtime's hyperparameters are written into HYPER at each step
SCHEDULED_OPTIMISERS = ("adam", "sgd")
#: slots of the hyperparameter array (the runtime fills them; `runtime/optimisers.py` names them)
HYPER = ("lr", "beta1", "beta2", "epsilon", "correction1", "correction2", "momentum", "dly_divisor")
#: slots of each key's array: its learning-rate factor and bounds (±inf where it has none)
BOUNDS = ("lr_scale", "min", "max")
#: the readout kinds whose largest value is the predicted class
#: (the readouts `frontend/checks.py` allows with this loss)
VALUE_READOUTS = frozenset({"avg_var", "avg_var_exp_weight", "max_var", "sum_var"})


def learning_plan(network: Network) -> tuple[str, str, float] | None:
    """(loss, optimiser, temperature) when the kernel can own the loss and the optimiser step of
    `network`'s train block, else None (the runtime keeps them)."""
    spec = network.train
    if spec is None:
        return None
    loss = spec.loss.name if spec.loss is not None else None
    optimiser = spec.optimizer.name if spec.optimizer is not None else "adam"
    if loss != SCHEDULED_LOSS or optimiser not in SCHEDULED_OPTIMISERS:
        return None
    args = dict(spec.loss.args)
    if set(args) - LOSS_ARGS:
        return None
    try:
        temperature = float(args.get("temperature", 1.0))
    except (TypeError, ValueError):
        return None
    if not temperature > 0:
        return None
    return loss, optimiser, temperature


def with_learning(kernel: Kernel, network: Network) -> Kernel:
    """`kernel` (EventProp's forward and backward, or e-prop's online learning) with the loss and
    optimiser phases and the `loss`, `gather` and `step` entries, when `learning_plan` allows; else
    `kernel` unchanged."""
    plan = learning_plan(network)
    if plan is None:
        return kernel
    loss, optimiser, temperature = plan
    outputs = _outputs(kernel)
    readouts = _readouts(kernel, network, outputs)
    if readouts is None:
        return kernel
    new: list[Array] = []
    hyper = _add(
        new,
        Array(
            array_name("lh", kernel.name),
            Role.INPUT,
            kernel.name,
            (len(HYPER),),
            "double",
            var="hyper",
            comment="optimiser hyperparameters of this step: " + ", ".join(HYPER),
        ),
    )
    loss_phases = [
        _loss_phase(new, readouts[pop], label, dly, temperature, hyper)
        for pop, (label, dly) in outputs.items()
    ]
    gather, step = [], []
    for grad in (a for a in kernel.arrays if a.role == Role.GRADIENT):
        weight = _trained(kernel, grad)
        key = param_key(grad.var, grad.owner) if grad.var else grad.owner
        g, s = _update_phases(new, key, grad, weight, hyper, optimiser)
        gather.append(g)
        step.append(s)
    if not gather:
        return kernel
    phases = (*loss_phases, *gather, *step)
    entries = [
        Entry("loss", after=tuple(p.name for p in loss_phases)),
        Entry("gather", once=tuple(p.name for p in gather)),
        Entry("step", once=tuple(p.name for p in step)),
    ]
    if _per_trial_backward(kernel):
        entries.append(Entry("train", chain=("run", "loss", "backward"), once=entries[1].once))
    out = dataclasses.replace(
        kernel,
        arrays=(*kernel.arrays, *new),
        phases=(*kernel.phases, *phases),
        entries=(*kernel.entries, *entries),
    )
    problems = verify_kernel(out)
    if problems:
        raise AssertionError("the learning schedule made an invalid kernel:\n" + "\n".join(problems))
    # the loss and optimiser these phases implement, for the runtime to compare with the ones it was
    # given (another loss or optimiser keeps the runtime's own loop)
    spec = {"loss": loss, "temperature": temperature, "optimiser": optimiser}
    return dataclasses.replace(
        out, interface={**out.interface, "learning": {**learning_manifest(out), **spec}}
    )


# --------------------------------------------------------------------------------------------------


def _add(arrays: list[Array], a: Array) -> Array:
    arrays.append(a)
    return a


def _per_trial_backward(kernel: Kernel) -> bool:
    """Whether `kernel` has a `backward` entry that reads nothing of other trials: no TARGET without
    a batch dimension (a sum over the batch's forward passes that the runtime writes in between)."""
    backward = next((e for e in kernel.entries if e.name == "backward"), None)
    if backward is None or backward.once or backward.chain:
        return False
    arrays = {a.name: a for a in kernel.arrays}
    for name in backward.phases():
        for st in walk(kernel.phase(name).body):
            for expr in (getattr(st, "expr", None), getattr(st, "cond", None), getattr(st, "target", None)):
                for ref in expr.atoms(sympy.Indexed) if expr is not None else ():
                    a = arrays[str(ref.base.label)]
                    if a.role == Role.TARGET and "batch" not in a.shape:
                        return False
    return True


def _outputs(kernel: Kernel) -> dict[str, tuple[Array | None, Array | None]]:
    """Output population -> (the label array the kernel already reads, its dL/dy array): e-prop's
    error reads a label [batch] during the forward pass, EventProp's backward pass reads dL/dy."""
    out: dict[str, tuple[Array | None, Array | None]] = {}
    for a in kernel.arrays:
        if a.role != Role.TARGET or a.var not in ("label", "dL_dy"):
            continue
        label, dly = out.get(a.owner, (None, None))
        if a.var == "label":
            if a.shape != ("batch",) or a.dtype != "int32":
                continue
            label = a
        else:
            dly = a
        out[a.owner] = (label, dly)
    return out


def _readouts(
    kernel: Kernel, network: Network, outputs: Mapping[str, tuple[Array | None, Array | None]]
) -> dict[str, Array] | None:
    """Output population -> its READOUT array, when every output has a value readout [batch, n]
    (and a dL/dy of that shape, if it has one)."""
    if not outputs:
        return None
    out = {}
    for owner, (_, dly) in outputs.items():
        pop = network.populations[owner]
        kind = getattr(pop.readout, "kind", None) if pop.readout is not None else None
        shape = ("batch", kernel.populations[owner])
        if (dly is not None and dly.shape != shape) or kind not in VALUE_READOUTS:
            return None
        found = [a for a in kernel.arrays if a.role == Role.READOUT and a.owner == owner]
        if len(found) != 1 or found[0].shape != shape:
            return None
        out[owner] = found[0]
    return out


def _trained(kernel: Kernel, grad: Array) -> Array:
    """The WEIGHT or PARAM array a GRADIENT array belongs to."""
    if grad.var is None:
        return kernel.find(Role.WEIGHT, grad.owner)
    return kernel.find(Role.PARAM, grad.owner, grad.var)


def _loss_phase(
    new: list[Array],
    readout: Array,
    label: Array | None,
    dly: Array | None,
    temperature: float,
    hyper: Array,
) -> Phase:
    """Softmax cross-entropy of readout / T against the trial's label: the loss, whether the first
    largest readout is the label (`np.argmax`), and dL/dy = (softmax - onehot) / (T * divisor) when
    a backward pass reads it. `label`: the kernel's own (e-prop's), else one made here."""
    pop = readout.owner

    def per_trial(var: str, role: Role, dtype: str, comment: str) -> Array:
        return _add(
            new, Array(array_name("ls", pop, var), role, pop, ("batch",), dtype, var=var, comment=comment)
        )

    if label is None:
        label = per_trial("label", Role.TARGET, "int32", "the trial's class")
    loss = per_trial("loss", Role.LOSS, "double", "cross-entropy of the trial")
    correct = per_trial("correct", Role.LOSS, "int32", "1 if the arg-max readout is the label")
    top = per_trial("top", Role.SCRATCH, "double", "largest readout / T")
    best = per_trial("best", Role.SCRATCH, "int32", "its neuron (the first, as np.argmax)")
    total = per_trial("total", Role.SCRATCH, "double", "sum of exp(readout / T - top)")
    j = Index("j")
    b = BATCH
    divisor = hyper[HYPER.index("dly_divisor")]  # the real trials (mean), or 1 (a summed batch)
    t = sympy.Float(temperature)
    z = readout[b, j] / t if temperature != 1.0 else readout[b, j]
    y0 = readout[b, 0] / t if temperature != 1.0 else readout[b, 0]
    body = (
        Store(top[b], y0, comment="first readout / T"),
        Store(best[b], 0),
        Loop(
            Neurons(pop),
            (If(sympy.StrictGreaterThan(z, top[b]), (Store(top[b], z), Store(best[b], j))),),
            {"j": j},
            "the largest readout and the first neuron that has it",
        ),
        Store(total[b], 0),
        Loop(Neurons(pop), (Store(total[b], sympy.exp(z - top[b]), "+="),), {"j": j}),
        Let(Local("__p_label"), sympy.exp(z.subs(j, label[b]) - top[b]) / total[b], "p of the label"),
        Store(loss[b], -sympy.log(sympy.Max(Local("__p_label"), sympy.Float(1e-300)))),
        Store(correct[b], sympy.Piecewise((1, sympy.Eq(best[b], label[b])), (0, True))),
    )
    if dly is not None:
        body += (
            Loop(
                Neurons(pop),
                (
                    Let(Local("__p"), sympy.exp(z - top[b]) / total[b], "softmax"),
                    Store(
                        dly[b, j],
                        (Local("__p") - sympy.Piecewise((1, sympy.Eq(j, label[b])), (0, True)))
                        / (divisor * t if temperature != 1.0 else divisor),
                        comment="dL/dy",
                    ),
                ),
                {"j": j},
            ),
        )
    what = f"cross-entropy of {pop}'s readout" + (" and dL/dy" if dly is not None else "")
    return Phase(f"loss_{pop}", PhaseKind.LOSS, body, what)


def _update_phases(
    new: list[Array], key: str, grad: Array, weight: Array, hyper: Array, optimiser: str
) -> tuple[Phase, Phase]:
    owner, size = weight.owner, _size(weight)
    tag = (weight.var,) if weight.var else ()

    def beside(prefix: str, var: str, role: Role, shape: tuple, comment: str) -> Array:
        """An array of the optimiser beside the trained one, named and tagged by its param."""
        tagged = f"{var}:{weight.var}" if weight.var else var
        return _add(
            new,
            Array(array_name(prefix, owner, *tag), role, owner, shape, "double", var=tagged, comment=comment),
        )

    gsum = beside("gs", "grad_sum", Role.OPTIMISER, weight.shape, f"dL/d{key} summed over the batch's trials")
    bounds = beside("lb", "bounds", Role.INPUT, (len(BOUNDS),), f"{key}: " + ", ".join(BOUNDS))
    q = Index("q")
    b = BATCH
    per_trial = trial_element(grad, b, q)
    shared = _size(grad, skip_batch=True) != size
    if shared:  # one value for the population: every trial's every neuron adds to it
        acc = Loop(
            Trials(), (Loop(Elements(grad.name), (Store(gsum[0], per_trial, "+="),), {"q": q}),), {"b": b}
        )
    else:
        acc = Loop(
            Trials(), (Loop(Elements(weight.name), (Store(gsum[q], per_trial, "+="),), {"q": q}),), {"b": b}
        )
    gather = Phase(
        f"gather_{key}",
        PhaseKind.UPDATE,
        (Loop(Elements(weight.name), (Store(gsum[q], 0),), {"q": q}), acc),
        f"dL/d{key} summed over the trials, in trial order",
    )
    h = {name: hyper[i] for i, name in enumerate(HYPER)}
    lr = h["lr"] * bounds[0]
    g = Local("__g")
    if optimiser == "adam":
        m = beside("om", "m", Role.OPTIMISER, weight.shape, f"Adam's first moment of {key}")
        v = beside("ov", "v", Role.OPTIMISER, weight.shape, f"Adam's second moment of {key}")
        body = (
            Let(g, gsum[q]),
            Store(m[q], m[q] * h["beta1"] + (1 - h["beta1"]) * g),
            Store(v[q], v[q] * h["beta2"] + (1 - h["beta2"]) * g * g),
            Let(
                Local("__step"),
                lr * (m[q] / h["correction1"]) / (sympy.sqrt(v[q] / h["correction2"]) + h["epsilon"]),
                "Adam, bias-corrected",
            ),
        )
    else:
        vel = beside("ovel", "velocity", Role.OPTIMISER, weight.shape, f"SGD's velocity of {key}")
        body = (
            Let(g, gsum[q]),
            Store(vel[q], vel[q] * h["momentum"] + g),
            Let(Local("__step"), lr * vel[q], "SGD with momentum"),
        )
    # the bounds as selects on locals, not Min/Max: C compilers vectorise a select of values loaded
    # unconditionally, but neither fmin/fmax (which must order NaNs) nor a select whose branch loads;
    # a NaN step stays NaN, for the finite check after the step
    stepped, lo, hi = Local("__stepped"), Local("__lo"), Local("__hi")
    clipped = sympy.Piecewise(
        (lo, sympy.StrictLessThan(stepped, lo)), (hi, sympy.StrictGreaterThan(stepped, hi)), (stepped, True)
    )
    body = (
        *body,
        Let(stepped, weight[q] - Local("__step"), "the step"),
        Let(lo, bounds[1], "lower bound"),
        Let(hi, bounds[2], "upper bound"),
        Store(weight[q], clipped, comment="then the bounds"),
    )
    step = Phase(
        f"step_{key}",
        PhaseKind.UPDATE,
        (Loop(Elements(weight.name), body, {"q": q}),),
        f"{optimiser} step of {key}",
    )
    return gather, step


def _size(a: Array, skip_batch: bool = False) -> int | str:
    dims = a.shape[1:] if skip_batch and a.shape and a.shape[0] == "batch" else a.shape
    if any(isinstance(d, str) for d in dims):
        return "nnz" if "nnz" in dims else str(dims)
    return math.prod(dims)


def learning_manifest(kernel: Kernel) -> dict[str, Any] | None:
    """What the loader needs to drive `loss`, `gather` and `step`: array names by role, owner, var."""
    if not any(e.name == "step" for e in kernel.entries):
        return None
    named: Mapping[tuple[str, str, str | None], str] = {
        (a.role.value, a.owner, a.var): a.name for a in kernel.arrays
    }
    outputs = {
        a.owner: {
            "label": named[("target", a.owner, "label")],
            "loss": a.name,
            "correct": named[("loss", a.owner, "correct")],
            "dly": named.get(("target", a.owner, "dL_dy")),
            "size": kernel.populations[a.owner],
        }
        for a in kernel.arrays
        if a.role == Role.LOSS and a.var == "loss"
    }
    keys = {}
    for a in kernel.arrays:
        if a.role != Role.OPTIMISER or not a.var.startswith("grad_sum"):
            continue
        param = a.var.partition(":")[2] or None
        key = param_key(param, a.owner) if param else a.owner
        tag = f":{param}" if param else ""
        keys[key] = {
            "gsum": a.name,
            "bounds": named[("input", a.owner, "bounds" + tag)],
            "weight": named[("param", a.owner, param)] if param else named[("weight", a.owner, None)],
            "moments": {
                m: named[("optimiser", a.owner, m + tag)]
                for m in ("m", "v", "velocity")
                if ("optimiser", a.owner, m + tag) in named
            },
        }
    run = next(e for e in kernel.entries if e.name == "run")
    resets = {p.name for p in kernel.phases if p.kind == PhaseKind.RESET and p.name in run.before}
    written = {
        st.target.array
        for p in kernel.phases
        if p.name in resets
        for st in walk(p.body)
        if isinstance(st, Store)
    }
    scratch = {a.name for a in kernel.arrays if a.role == Role.SCRATCH}  # written before read, each step
    return {
        "hyper": named[("input", kernel.name, "hyper")],
        "hyper_slots": list(HYPER),
        "bounds_slots": list(BOUNDS),
        "outputs": outputs,
        "keys": keys,
        # the entry that runs a whole batch's forward pass, loss, backward pass and gather, if any
        "batch_entry": "train" if any(e.name == "train" for e in kernel.entries) else None,
        # arrays a learning batch need not refill before `run`: its reset phases or each step do it
        "kernel_resets": sorted(written | scratch),
    }
