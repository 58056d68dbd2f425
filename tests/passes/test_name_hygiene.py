"""Hygienic names (issue 13): a generated symbol can never equal a user's.

The same network twice, once with ordinary names and once with every name the compiler generated or
still generates (`lambda_v`, `D`, `dlp_dts`, `psi`, `fb`, ...) as the user's params, states, inputs,
models, populations and network: a rename that keeps every value, so the two are the same
mathematics and must give bit-identical losses and gradients (C backend, double precision) under
EventProp and under e-prop. Before the reserved namespace, `specialise` substituted any symbol whose
name was a param's, so e.g. a param `D` silently replaced EventProp's backward transmission.
Names in the reserved namespace itself are refused with E-RESERVED-NAME at the name.
"""

from __future__ import annotations

import numpy as np
import pytest
from snnc.frontend import check_source
from snnc.ir import names
from snnc.runtime.encoding import latency_encode
from snnc.runtime.optimisers import get_optimiser
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network

# an adaptive LIF (its threshold state is recorded at every spike), exponential synapses, a leaky
# readout; `{...}` are the names the two variants spell differently
EVENTPROP = """
neuron {Hidden} {{
    param {tau_mem} = 20 ms
    param {v_thresh} = 0.8
    param {tau_a} = 40 ms
    param {gain} = 1.0
    param {p1} = 0.3
    param {p2} = 0.7
    param {p3} = 2.0
    param {p4} = 5.0
    param {p5} = 3.0
    param {p6} = 1.0
    param {p7} = 0.2
    param {p8} = 0.1
    param {p9} = 0.5
    param {p10} = 4.0
    state {v} = 0.0
    state {a} = 0.0
    input {i_syn}
    d{v}/dt = ({gain} * {i_syn} - {v}) / {tau_mem}
    d{a}/dt = -{a} / {tau_a}
    spike when {v} >= {v_thresh} + {a}
    reset {{
        {v} = 0.0
        {a} += 0.1
    }}
}}

synapse {Syn} {{
    param {tau} = 5 ms
    state {i} = 0.0
    d{i}/dt = -{i} / {tau}
    on_pre {{ {i} += w }}
    output {i}
}}

neuron {Readout} {{
    param {tau_out} = 10 ms
    param {bias} = 0.0
    state {vo} = 0.0
    input {i_out}
    d{vo}/dt = ({i_out} + {bias} - {vo}) / {tau_out}
}}

neuron {Input} {{
    generator spike_source
}}

network {net} {{
    input  {x}   = {Input}(3)
    hidden {h}   = {Hidden}(5)
    output {out} = {Readout}(2, readout = avg_var({vo}))
    {x} -> {h}   : Dense(weight = Normal(mean = 4.0, sd = 1.5)), {Syn}()
    {h} -> {out} : Dense(weight = Normal(mean = 0.6, sd = 0.3)), {Syn}()
}}

train {net} {{
    algorithm  = eventprop(max_spikes = 50)
    loss       = sparse_categorical_crossentropy
    optimizer  = sgd(lr = 0.1)
    dt         = 0.5 ms
    duration   = 25 ms
    batch_size = 2
    seed       = 3
}}
"""

ORDINARY_EVENTPROP = {
    "Hidden": "Alif",
    "tau_mem": "tau_mem",
    "v_thresh": "v_thresh",
    "tau_a": "tau_a",
    "gain": "gain",
    **{f"p{k}": f"p{k}" for k in range(1, 11)},
    "v": "v",
    "a": "a",
    "i_syn": "i_syn",
    "Syn": "Expo",
    "tau": "tau",
    "i": "i",
    "Readout": "Li",
    "tau_out": "tau_out",
    "bias": "bias",
    "vo": "vo",
    "i_out": "i_out",
    "Input": "Source",
    "net": "net",
    "x": "x",
    "h": "h",
    "out": "out",
}

# every generated spelling of the EventProp families, old (`lambda_v`, `D`) and new without `__`
HOSTILE_EVENTPROP = {
    "Hidden": "lambda_v",
    "tau_mem": "lambda_v",  # the old adjoint of `v`
    "v_thresh": "D",
    "tau_a": "decay_lambda_v",  # the old hoisted exp(-dt/lambda_v)
    "gain": "K",
    "p1": "dlp_dts",
    "p2": "dL_dy",
    "p3": "k",
    "p4": "spike_count_sum",
    "p5": "batch_size",
    "p6": "is_first_spike",
    "p7": "T",
    "p8": "t_max",
    "p9": "crossing_rate",
    "p10": "lambda_a",
    "v": "v",
    "a": "t_s",  # recorded at each spike, like the spike time
    "i_syn": "lambda_i",
    "Syn": "D",
    "tau": "decay_0",
    "i": "lambda_t_s",
    "Readout": "dlp_dts",
    "tau_out": "T",
    "bias": "dL_dy",
    "vo": "lambda_vo",
    "i_out": "k",
    "Input": "spike_count_sum",
    "net": "batch_size",
    "x": "K",
    "h": "lambda",
    "out": "t",
}

# a recurrent LIF layer and a leaky readout with a trained bias, random feedback
EPROP = """
neuron {Hidden} {{
    param {tau_mem} = 20 ms
    param {v_thresh} = 0.5
    param {p1} = 0.3
    param {p2} = 0.7
    param {p3} = 2.0
    param {p4} = 5.0
    param {p5} = 3.0
    param {p6} = 1.0
    param {p7} = 0.2
    param {p8} = 0.1
    param {p9} = 0.5
    param {p10} = 4.0
    param {p11} = 6.0
    param {p12} = 7.0
    state {v} = 0.0
    input {i_syn}
    d{v}/dt = ({i_syn} - {v}) / {tau_mem}
    spike when {v} >= {v_thresh}
    reset {{ {v} -= {v_thresh} }}
}}

synapse {Syn} {{
    param {tau} = 5 ms
    state {i} = 0.0
    d{i}/dt = -{i} / {tau}
    on_pre {{ {i} += w }}
    output {i}
}}

synapse {Delta} {{
    state {d} = 0.0
    on_pre {{ {d} += w }}
    output impulse {d}
}}

neuron {Readout} {{
    param {tau_out} = 10 ms
    param bias = 0.1
    state {vo} = 0.0
    input {i_out}
    d{vo}/dt = ({i_out} + bias - {vo}) / {tau_out}
}}

neuron {Input} {{
    generator spike_source
}}

network {net} {{
    input  {x}   = {Input}(3)
    hidden {h}   = {Hidden}(6)
    output {out} = {Readout}(2, readout = avg_var({vo}))
    {x} -> {h}   : Dense(weight = Normal(mean = 3.0, sd = 1.0)), {Syn}()
    {h} -> {h}   : Dense(weight = Normal(mean = 0.0, sd = 0.2)), {Syn}()
    {h} -> {out} : Dense(weight = Normal(mean = 0.3, sd = 0.3)), {Delta}()
}}

train {net} {{
    algorithm  = eprop(feedback = random, c_reg = 0.01)
    loss       = sparse_categorical_crossentropy
    optimizer  = sgd(lr = 0.1)
    dt         = 1 ms
    duration   = 25 ms
    batch_size = 2
    seed       = 3
}}
"""

ORDINARY_EPROP = {
    "Hidden": "Lif",
    "tau_mem": "tau_mem",
    "v_thresh": "v_thresh",
    **{f"p{k}": f"p{k}" for k in range(1, 13)},
    "v": "v",
    "i_syn": "i_syn",
    "Syn": "Expo",
    "tau": "tau",
    "i": "i",
    "Delta": "Delta",
    "d": "d",
    "Readout": "Li",
    "tau_out": "tau_out",
    "vo": "vo",
    "i_out": "i_out",
    "Input": "Source",
    "net": "net",
    "x": "x",
    "h": "h",
    "out": "out",
}

# every generated spelling of the e-prop families (the output bias must be called `bias`)
HOSTILE_EPROP = {
    "Hidden": "psi",
    "tau_mem": "E",
    "v_thresh": "psi",
    "p1": "z",
    "p2": "z_pre",
    "p3": "refractory",
    "p4": "L",
    "p5": "f_avg",
    "p6": "y_true",
    "p7": "fb",
    "p8": "eps_v",
    "p9": "e",
    "p10": "ebar",
    "p11": "dW",
    "p12": "B",
    "v": "eps_z",
    "i_syn": "L_in",
    "Syn": "fb",
    "tau": "W",
    "i": "fb",  # the old `fb__<P>` of the learning signal is now this state's coupled name
    "Delta": "L",
    "d": "e",  # the old trace `e__<P>` is now this state's coupled name
    "Readout": "E",
    "tau_out": "dbias",
    "vo": "sumexp",  # the old reduction `sumexp__<var>`
    "i_out": "max_in",
    "Input": "z_pre",
    "net": "eps_v",
    "x": "z",
    "h": "e",
    "out": "y_true",
}


def _data(n: int, inputs: int, classes: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(7)
    return latency_encode(rng.random((n, inputs)), 1.0, 20.0), rng.integers(0, classes, n)


def _train(source: str, rename: dict[str, str], steps: int = 2) -> tuple[list, list, list]:
    """Losses, every batch's gradients and the final weights, in projection order (names differ)."""
    net = compile_network(source.format(**rename), precision="double")
    art = net.artefact
    art.set_threads(1)
    seen: list[list[np.ndarray]] = []
    backward = art.backward

    def recording(dl):  # noqa: ANN001, ANN202
        grads = backward(dl)
        seen.append([np.array(g, copy=True) for g in grads.values()])
        return grads

    art.backward = recording
    x, labels = _data(4, 3, 2)
    trainer = Trainer(art, "sparse_categorical_crossentropy", get_optimiser("sgd", {"lr": 0.1}), 2)
    trainer.train({rename["x"]: x}, {rename["out"]: labels}, steps, shuffle=False, callbacks=())
    losses = [h["train"]["loss"] for h in trainer.history]
    return losses, seen, list(art.get_weights().values())


def _assert_identical(a: tuple, b: tuple) -> None:
    losses_a, grads_a, weights_a = a
    losses_b, grads_b, weights_b = b
    assert losses_a == losses_b
    assert len(grads_a) == len(grads_b) == 4  # 2 epochs of 2 batches
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert len(ga) == len(gb)
        assert any(np.any(g != 0) for g in ga), "the test network must learn something"
        for x, y in zip(ga, gb, strict=True):
            assert np.array_equal(x, y)
    for x, y in zip(weights_a, weights_b, strict=True):
        assert np.array_equal(x, y)


def test_eventprop_is_blind_to_names_like_generated_ones() -> None:
    _assert_identical(_train(EVENTPROP, ORDINARY_EVENTPROP), _train(EVENTPROP, HOSTILE_EVENTPROP))


def test_eprop_is_blind_to_names_like_generated_ones() -> None:
    _assert_identical(_train(EPROP, ORDINARY_EPROP), _train(EPROP, HOSTILE_EPROP))


# --------------------------------------------------------------------------------------------------
# Names in the reserved namespace are refused where they are declared
# --------------------------------------------------------------------------------------------------

_DECLARED = """\
neuron Hid {
    param tau_mem = 20 ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau_mem
    spike when v >= 1.0
    reset { v = 0.0 }
}
synapse Syn {
    derived decay = exp(-1 ms / 5 ms)
    state i = 0.0
    di/dt = -i / 5 ms
    on_pre { i += w }
    output i
}
neuron Src {
    generator spike_source
}
network net {
    input x = Src(2)
    hidden h = Hid(3)
    x -> h : Dense(), Syn()
}
"""

RESERVED_NAME = "E-RESERVED-NAME"

# (what is renamed, its new spelling, the line and column of the name)
_CASES = [
    ("Hid", "Hid__x", 1, 8),  # a model
    ("tau_mem", "lambda__v", 2, 11),  # a param
    ("v", "v__x_to_h", 3, 11),  # a state (renamed everywhere it is used)
    ("i_syn", "_i_syn", 4, 11),  # an input
    ("decay", "decay_", 10, 13),  # a derived param
    ("net", "net__1", 19, 9),  # a network
    ("x", "x__", 20, 11),  # a population
]


@pytest.mark.parametrize(("old", "new", "line", "col"), _CASES, ids=[c[1] for c in _CASES])
def test_reserved_names_are_refused_at_the_name(old: str, new: str, line: int, col: int) -> None:
    import re

    source = re.sub(rf"\b{old}\b", new, _DECLARED).replace(f"d{old}/dt", f"d{new}/dt")
    assert source.splitlines()[line - 1][col - 1 :].startswith(new)
    errors = [d for d in check_source(source, "r.snn") if d.severity == "error"]
    assert [(d.code, d.span.line, d.span.col) for d in errors] == [(RESERVED_NAME, line, col)], [
        d.render() for d in errors
    ]
    assert f"'{new}'" in errors[0].message and "rename" in errors[0].hint


def test_the_unrenamed_source_is_valid() -> None:
    assert not [d for d in check_source(_DECLARED, "r.snn") if d.severity == "error"]


def test_generated_names_lie_outside_what_users_may_write() -> None:
    generated = [
        names.adjoint("v"),
        names.adjoint(names.coupled("i", "x_to_h")),
        names.decay("tau_mem"),
        names.eligibility("x_to_h", "v"),
        names.bias_eligibility("v"),
        names.feedback("h_to_out"),
        names.coupled("i", "x_to_h"),
        *(getattr(names, k) for k in dir(names) if k.isupper() and not k.startswith("_") and k != "SEP"),
    ]
    assert all(names.user_name_problem(g) is not None for g in generated)
    assert len(set(generated)) == len(generated)
    assert names.adjoint_state(names.adjoint("i__x_to_h")) == "i__x_to_h"
    assert names.split_coupled(names.coupled("i", "x_to_h")) == ("i", "x_to_h")
    assert names.local("ev", names.SPIKE_TIME) != names.local("ev", "t_s")


def test_snnc_check_reports_the_reserved_name_with_its_location() -> None:
    import subprocess
    import sys
    from pathlib import Path

    fixture = Path(__file__).parents[1] / "frontend" / "invalid" / "reserved_namespace.snn"
    result = subprocess.run(
        [sys.executable, "-m", "snnc", "check", str(fixture)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert f"{fixture}:14:11: error: param name 'tau__x_to_h' is reserved" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_the_kernels_loss_and_optimiser_step_are_blind_to_names_too():
    """The same pair of networks through the artefact's own loss and SGD step (runtime/kernel_loop.py,
    taken here because nothing wraps the artefact): bit-identical losses and weights."""

    def train(rename: dict[str, str]) -> tuple[list, list]:
        net = compile_network(EVENTPROP.format(**rename), precision="double")
        art = net.artefact
        art.set_threads(1)
        assert art.learning is not None, "the kernel must compute this loss and optimiser itself"
        x, labels = _data(4, 3, 2)
        trainer = Trainer(art, "sparse_categorical_crossentropy", get_optimiser("sgd", {"lr": 0.1}), 2)
        trainer.train({rename["x"]: x}, {rename["out"]: labels}, 2, shuffle=False, callbacks=())
        return [h["train"]["loss"] for h in trainer.history], list(art.get_weights().values())

    (losses_a, weights_a), (losses_b, weights_b) = train(ORDINARY_EVENTPROP), train(HOSTILE_EVENTPROP)
    assert losses_a == losses_b
    for wa, wb in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert losses_a[0] != losses_a[1], "the test network must learn something"
