"""The e-prop schedule in the kernel IR means Bellec's e-prop: the kernel, run by the plain interpreter
(no backend), accumulates the ΔW of Bellec's equations written out in numpy
(tests/passes/test_eprop_numeric.py), and its plain `run` entry is the forward pass alone."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.frontend import load_source
from snnc.ir.kernel import PhaseKind, Role, kernel_to_text, verify_kernel, walk
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop
from snnc.passes.schedule_eprop import eprop_kernel

from tests.passes.test_eprop_numeric import HIDDEN, SRC, bellec, make_data, simulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))
from kernel_interp import Interpreter  # noqa: E402

STEPS = 30
WEIGHTS = {"x_to_h": "w_in", "h_to_h": "w_rec", "h_to_out": "w_out"}


def _kernel(kind: str, feedback: str):  # noqa: ANN202
    net = eprop(discretise(load_source(SRC.format(hidden=HIDDEN[kind], fb=feedback), "n.snn")))
    return eprop_kernel(net, precision="double")


def _arrays(kernel, rows: list[dict]) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Every array at its initial value, the weights, bias and feedback of the data, the labels."""
    d = rows[0]
    arrays = {}
    for a in kernel.arrays:
        if a.optional or a.role == Role.INPUT:
            continue
        shape = tuple({"batch": len(rows), "steps": STEPS}.get(dim, dim) for dim in a.shape)
        arrays[a.name] = np.full(shape, a.init, dtype=float)
    for proj, key in WEIGHTS.items():
        arrays[kernel.find(Role.WEIGHT, proj).name] = d[key].ravel()
    arrays[kernel.find(Role.PARAM, "out", "bias").name] = d["bias"].copy()
    for a in kernel.arrays:
        if a.role == Role.FEEDBACK:
            arrays[a.name] = d["b_rand"].copy()
    arrays[kernel.find(Role.TARGET, "out", "label").name] = np.array([r["label"] for r in rows], float)
    return arrays


def _spikes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k, i = np.nonzero(x)
    return k * 1.0, i


@pytest.mark.parametrize(
    ("kind", "feedback"),
    [  # ~9 s a case on 2 cores (CI time): LIF with symmetric and ALIF with random feedback by default
        ("lif", "symmetric"),
        ("alif", "random"),
        pytest.param("lif", "random", marks=pytest.mark.slow),
        pytest.param("alif", "symmetric", marks=pytest.mark.slow),
    ],
)
def test_the_eprop_kernel_accumulates_bellecs_gradients(kind: str, feedback: str) -> None:
    adaptive = kind == "alif"
    kernel = _kernel(kind, feedback)
    assert verify_kernel(kernel) == []
    d = make_data(seed=3)
    rows = [d, {**d, "x": make_data(seed=11)["x"], "label": 0}]
    arrays = _arrays(kernel, rows)
    Interpreter(kernel, arrays).run(
        "eprop_run", rows=len(rows), steps=STEPS, inputs={"x": [_spikes(r["x"]) for r in rows]}
    )
    ref: dict[str, np.ndarray] = {}
    for r in rows:
        for name, g in bellec(r, simulate(r, adaptive), adaptive, feedback).items():
            ref[name] = ref.get(name, 0.0) + g
    got = {proj: arrays[kernel.find(Role.GRADIENT, proj).name].sum(axis=0) for proj in WEIGHTS}
    got["bias"] = arrays[kernel.find(Role.GRADIENT, "out", "bias").name].sum(axis=0)
    for name, g in got.items():
        assert np.abs(ref[name]).max() > 1e-3, name
        np.testing.assert_allclose(g, ref[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_plain_run_entry_is_the_forward_pass_alone() -> None:
    kernel = _kernel("alif", "random")
    d = make_data(seed=3)
    learning, plain = _arrays(kernel, [d]), _arrays(kernel, [d])
    inputs = {"x": [_spikes(d["x"])]}
    Interpreter(kernel, learning).run("eprop_run", rows=1, steps=STEPS, inputs=inputs)
    Interpreter(kernel, plain).run("run", rows=1, steps=STEPS, inputs=inputs)
    np.testing.assert_array_equal(plain["r_out"], learning["r_out"])
    np.testing.assert_allclose(plain["r_out"][0], simulate(d, True)["vo"].sum(axis=0), rtol=1e-12)
    run = next(e for e in kernel.entries if e.name == "run")
    written = {
        st.target.array
        for name in run.phases()
        for st in walk(kernel.phase(name).body)
        if hasattr(st, "target")
    }
    e_prop = {a.name for a in kernel.arrays if a.role in (Role.ELIGIBILITY, Role.GRADIENT)}
    assert e_prop and not written & e_prop, "the forward pass writes no e-prop array"
    assert all(kernel.phase(n).kind != PhaseKind.LEARN for n in run.phases())


def test_the_eprop_kernel_prints_its_schedule() -> None:
    text = kernel_to_text(_kernel("lif", "symmetric"))
    assert (
        "entry eprop_run: before [reset, reset__eprop], forward steps [zpre__x_to_h, zpre__h_to_h, zpre__h_to_out, "
        "deliver_x_to_h, deliver_h_to_h, deliver_h_to_out, generate_x, learn_step__out, learn__out, "
        "signal__h, learn_step__h, learn__h]"
    ) in text
    assert "efb_h_to_out[b, i] += eE_out[b, j]*w_h_to_out[q]" in text  # symmetric: B = W
    assert "array eg_x_to_h: gradient of x_to_h, scalar[batch, 3, 4]" in text
    assert "eg_x_to_h[12*b + q] = 0.0" in text  # each trial starts its gradient row at 0


def _sparse_kernel(post_major: bool):  # noqa: ANN202
    from snnc.passes.schedule import schedule

    from snnc.api import lower
    from tests.backends.test_genn_eprop_sparse import SRC as SPARSE_SRC

    return schedule(lower(SPARSE_SRC.replace("KIND(", "Sparse(p = 0.5, ")), post_major=post_major)


def test_sparse_hidden_projections_learn_post_major_and_give_their_gradients_back_by_slot() -> None:
    """The C kernel walks a sparse projection into a hidden population post neuron by post neuron
    (its eligibilities, traces and trial gradient in that order), sorts the structure once per
    batch and puts each trial's gradient back in weight-slot order; GeNN's kernel asks without."""
    from snnc.ir.kernel import Loop, PostSynapses, Synapses

    kernel = _sparse_kernel(True)
    assert verify_kernel(kernel) == []
    entry = next(e for e in kernel.entries if e.name == "eprop_run")
    assert entry.prepare == ("order__x_to_h", "order__h_to_h")
    assert entry.after == ("gradient__x_to_h", "gradient__h_to_h")
    learn = [st for st in kernel.phase("learn__h").body if isinstance(st, Loop)]
    walks = {st.space.projection: type(st.space) for st in learn if hasattr(st.space, "projection")}
    assert walks == {"x_to_h": PostSynapses, "h_to_h": PostSynapses}
    text = kernel_to_text(kernel)
    assert "egs_x_to_h[b, s] += " in text and "eg_x_to_h[b, q] = egs_x_to_h[b, s]" in text
    assert "let __z_pre = ezs_x_to_h[b, s]" in text  # z_pre per synapse, in order: no gather
    assert "ezs_x_to_h[b, ecs_x_to_h[q]] = 1.0" in text and "ezs_x_to_h[b, ecs_x_to_h[q]] = 0" in text

    plain = _sparse_kernel(False)
    assert verify_kernel(plain) == []
    entry = next(e for e in plain.entries if e.name == "eprop_run")
    assert entry.prepare == () and entry.after == ()
    learn = [st for st in plain.phase("learn__h").body if isinstance(st, Loop)]
    assert {type(st.space) for st in learn} == {Synapses}
    assert "egs_" not in kernel_to_text(plain)


def test_verify_refuses_a_post_major_walk_of_a_dense_projection() -> None:
    import dataclasses

    from snnc.ir.kernel import Loop, PostSynapses

    kernel = _sparse_kernel(True)
    dense = {**kernel.projections, "h_to_out": kernel.projections["h_to_out"]}
    walk_out = Loop(PostSynapses("h_to_out", "ecp_x_to_h", "eci_x_to_h", "ecq_x_to_h"), ())
    phase = dataclasses.replace(kernel.phase("learn__h"), body=(walk_out,))
    bad = dataclasses.replace(
        kernel, projections=dense, phases=tuple(phase if p.name == "learn__h" else p for p in kernel.phases)
    )
    assert any("whose layout is dense, not csr" in p for p in verify_kernel(bad))


def test_the_post_major_kernel_accumulates_the_weight_slot_kernels_gradients() -> None:
    """Interpreted, independently of any backend: the post-major schedule of a sparse network gives
    each weight slot the gradient the weight-slot walk gives it (same arithmetic per synapse)."""
    rng = np.random.default_rng(2)
    rows, steps = 1, 30
    kernels = {pm: _sparse_kernel(pm) for pm in (False, True)}
    base = kernels[False]
    structure: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in ("x_to_h", "h_to_h"):
        info = base.projections[name]
        n_pre, n_post = base.populations[info.pre], base.populations[info.post]
        mask = rng.random((n_pre, n_post)) < 0.5
        structure[name] = (np.concatenate([[0], np.cumsum(mask.sum(axis=1))]), np.nonzero(mask)[1])
    nnz = {name: cols.size for name, (_, cols) in structure.items()}
    inputs = {"x": [(np.sort(rng.uniform(0, 24, 120)), rng.integers(0, 8, 120)) for _ in range(rows)]}
    scale = {"w_x_to_h": 8.0, "w_h_to_h": 2.0, "w_h_to_out": 0.5}  # a hidden layer that spikes
    targets = rng.normal(size=(rows, steps, 3))
    weights = {a.name: None for a in base.arrays if a.role == Role.WEIGHT}
    grads = {}
    for pm, kernel in kernels.items():
        arrays = {}
        for a in kernel.arrays:
            if a.optional or a.role == Role.INPUT:
                continue
            dims = {"batch": rows, "steps": steps, "nnz": nnz.get(a.owner)}
            arrays[a.name] = np.full(tuple(dims.get(d, d) for d in a.shape), a.init, dtype=float)
        for name, (ptr, cols) in structure.items():
            arrays[f"c_{name}__row_ptr"], arrays[f"c_{name}__col_idx"] = ptr, cols
        for name in weights:
            if weights[name] is None:
                weights[name] = rng.normal(0, scale[name], arrays[name].size)
            arrays[name] = weights[name].copy()  # flat: the kernel reads w[q]
        arrays[kernel.find(Role.TARGET, "out", "label").name][:] = 0
        arrays[kernel.find(Role.TARGET, "out", "value").name][:] = targets
        Interpreter(kernel, arrays).run("eprop_run", rows=rows, steps=steps, inputs=inputs)
        grads[pm] = {p: arrays[kernel.find(Role.GRADIENT, p).name] for p in ("x_to_h", "h_to_h", "h_to_out")}
    for name, g in grads[False].items():
        assert np.abs(g).max() > 0, name  # the hidden layer spiked: every gradient carries signal
        np.testing.assert_allclose(grads[True][name], g, rtol=1e-12, atol=1e-15, err_msg=name)
