"""Random valid `.snn` networks with a train block, for the end-to-end property test.

`structure(rng)` draws what decides the generated code: populations (standard-library models and
generated ones), their sizes and parameters, connectivity kinds, delays, recurrence, readout and
algorithm (EventProp or e-prop). `source(structure, rng)` then draws what does not: weight
distributions and the train block's seed. Networks of one structure therefore share one compiled C
library (the compile cache), which is what lets hundreds of them run in CI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: a generated neuron model: leaky, with an adaptive threshold fed by its own spikes
GENERATED = """
neuron Gen{k} {{
    param tau_mem  = {tau_mem} ms
    param tau_a    = {tau_a} ms
    param v_thresh = {v_thresh}
    param jump     = {jump}
    state v = 0.0
    state a = 0.0
    input i_syn
    dv/dt = ({gain} * i_syn - v) / tau_mem
    da/dt = -a / tau_a
    spike when v >= v_thresh + a
    reset {{
        v = {reset}
        a += jump
    }}
}}
"""
#: a generated non-spiking readout model
GENERATED_READOUT = """
neuron Out{k} {{
    param tau_mem = {tau_mem} ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau_mem
}}
"""


@dataclass(frozen=True)
class Structure:
    text: str  # the .snn source with WEIGHT_i placeholders and SEED
    algorithm: str
    inputs: int
    input_kind: str  # "spike_source" | "poisson"
    outputs: int
    weights: int  # how many WEIGHT_i placeholders
    steps: int
    dt: float
    batch_size: int


def _hidden_model(rng: np.random.Generator, algorithm: str, k: int, models: list[str]) -> str:
    """A hidden population's model call (declaring a generated model in `models` when drawn)."""
    choice = rng.choice(["LIF", "ALIF", "IntegrateFire", "Gen"])
    tau = int(rng.choice([10, 20, 40]))
    if choice == "LIF":
        reset = "relative_reset = true, " if rng.random() < 0.5 else ""
        refrac = f", tau_refrac = {int(rng.choice([0, 1, 2]))} ms" if algorithm != "eventprop" else ""
        return f"LIF({{n}}, {reset}tau_mem = {tau} ms, v_thresh = {rng.choice([0.5, 1.0])}{refrac})"
    if choice == "ALIF":
        return f"ALIF({{n}}, tau_mem = {tau} ms, tau_adapt = {int(rng.choice([100, 500]))} ms, beta = 0.05)"
    if choice == "IntegrateFire":
        return f"IntegrateFire({{n}}, tau_mem = {tau} ms, v_thresh = 1.0)"
    models.append(
        GENERATED.format(
            k=k,
            tau_mem=tau,
            tau_a=int(rng.choice([50, 200])),
            v_thresh=rng.choice([0.5, 1.0]),
            jump=rng.choice([0.0, 0.1]),
            gain=rng.choice([1.0, 2.0]),
            reset=rng.choice(["0.0", "v - v_thresh"]),
        )
    )
    return f"Gen{k}({{n}})"


def _connection(
    rng: np.random.Generator, algorithm: str, pre_n: int, post_n: int, w: int, to_output: bool = False
) -> str:
    kinds = ["Dense", "Sparse"] + (["OneToOne"] if pre_n == post_n else [])
    kind = rng.choice(kinds) if algorithm == "eventprop" else "Dense"  # e-prop trains dense only
    delay = (
        f", delay = {int(rng.choice([1, 2]))} ms" if algorithm == "eventprop" and rng.random() < 0.2 else ""
    )
    if kind == "Sparse":
        conn = f"Sparse(p = {rng.choice([0.3, 0.6])}, weight = WEIGHT_{w}{delay})"
    elif kind == "OneToOne":
        conn = f"OneToOne(weight = WEIGHT_{w}{delay})"
    else:
        conn = f"Dense(weight = WEIGHT_{w}{delay})"
    # EventProp needs a synapse state that spikes jump; e-prop's readout filters its input directly
    exponential = algorithm == "eventprop" or (not to_output and rng.random() < 0.5)
    syn = f"Exponential(tau = {int(rng.choice([2, 5]))} ms)" if exponential else "Delta()"
    return f"{conn}, {syn}"


def structure(rng: np.random.Generator) -> Structure:
    algorithm = str(rng.choice(["eventprop", "eprop"]))
    inputs = int(rng.integers(2, 7))
    input_kind = "poisson" if rng.random() < 0.2 else "spike_source"
    outputs = int(rng.integers(2, 5))
    models: list[str] = []
    pops = [("x", inputs, "PoissonInput({n})" if input_kind == "poisson" else "SpikeInput({n})")]
    layers = 1 if algorithm == "eprop" else int(rng.integers(1, 3))  # e-prop: one recurrent layer
    for k in range(layers):
        n = int(rng.choice([4, 8, 8, 12]))
        pops.append((f"h{k}", n, _hidden_model(rng, algorithm, k, models)))
    if rng.random() < 0.3:
        models.append(GENERATED_READOUT.format(k=0, tau_mem=int(rng.choice([10, 20]))))
        out_model = "Out0({n}, readout = {readout})"
    else:
        out_model = str(rng.choice(["LeakyIntegrate", "LI"])) + "({n}, tau_mem = 20 ms, readout = {readout})"
    readout = (
        "avg_var" if algorithm == "eprop" else str(rng.choice(["avg_var_exp_weight", "max_var", "sum_var"]))
    )
    pops.append(("out", outputs, out_model.replace("{readout}", readout)))

    lines, w = [], 0
    for i in range(1, len(pops)):
        pre, post = pops[i - 1], pops[i]
        connection = _connection(rng, algorithm, pre[1], post[1], w, post[0] == "out")
        lines.append(f"    {pre[0]} -> {post[0]} : {connection}")
        w += 1
        if post[0].startswith("h") and (algorithm == "eprop" or rng.random() < 0.3):
            lines.append(f"    {post[0]} -> {post[0]} : {_connection(rng, algorithm, post[1], post[1], w)}")
            w += 1
    dt = float(rng.choice([0.5, 1.0]))
    steps = int(rng.choice([10, 20, 30]))
    batch_size = int(rng.choice([2, 4]))
    algo = (
        "eventprop(max_spikes = 50)" if algorithm == "eventprop" else "eprop(c_reg = 0.001, f_target = 10 Hz)"
    )
    population_lines = [
        f"    {'input ' if i == 0 else 'output' if name == 'out' else 'hidden'} {name} = "
        + model.replace("{n}", str(n))
        for i, (name, n, model) in enumerate(pops)
    ]
    text = (
        "use std.{SpikeInput, PoissonInput, LIF, ALIF, IntegrateFire, LeakyIntegrate, LI, Delta, Exponential}\n"
        + "".join(models)
        + "\nnetwork rnd {\n"
        + "\n".join(population_lines)
        + "\n"
        + "\n".join(lines)
        + "\n}\n\ntrain rnd {\n"
        + f"    algorithm  = {algo}\n"
        + "    loss       = sparse_categorical_crossentropy\n"
        + "    optimizer  = adam(lr = 0.01)\n"
        + f"    dt         = {dt} ms\n"
        + f"    duration   = {dt * steps} ms\n"
        + f"    batch_size = {batch_size}\n"
        + "    seed       = SEED\n}\n"
    )
    return Structure(text, algorithm, inputs, input_kind, outputs, w, steps, dt, batch_size)


def source(s: Structure, rng: np.random.Generator) -> str:
    """`s` with its weights' distributions and the seed drawn (nothing that changes the C code)."""
    text = s.text.replace("SEED", str(int(rng.integers(0, 2**31))))
    for w in range(s.weights):
        mean, sd = rng.uniform(-0.5, 2.0), rng.uniform(0.05, 1.0)
        text = text.replace(f"WEIGHT_{w}", f"Normal(mean = {mean:.3f}, sd = {sd:.3f})", 1)
    return text


def batch(s: Structure, rng: np.random.Generator) -> tuple[dict, dict]:
    """One batch of inputs and labels for a network of structure `s`."""
    b = s.batch_size
    if s.input_kind == "poisson":
        x = rng.uniform(0.0, 200.0, (b, s.inputs))
    else:
        rows = []
        for _ in range(b):
            k = int(rng.integers(0, 3 * s.inputs + 1))
            rows.append((np.sort(rng.uniform(0.0, s.dt * s.steps, k)), rng.integers(0, s.inputs, k)))
        x = rows
    return {"x": x}, {"out": rng.integers(0, s.outputs, b)}
