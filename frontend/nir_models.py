"""The `.snn` models `snnc import` writes for NIR's neuron nodes, stating NIR's equations literally.

NirLIF, NirCubaLIF, NirLI, NirCubaLI, NirIF and NirI are the neurons; NirCurrent (CubaLIF/CubaLI's
synaptic current) and NirDirac (a Dirac pulse) the synapses. `NEURONS` maps a NIR class to its model
and fields (NIR seconds -> snnc ms); `backends/nir/export.py` maps them back. `stepped` is a model as
a discrete-time exporter steps it (`snnc import --spike-step`). `biased` is a neuron that also takes
an Affine node's bias: a constant current added to I (per neuron, `bias = File(...)`).
"""

from __future__ import annotations

MODELS = {
    "NirLIF": """neuron NirLIF {   # NIR LIF: tau dv/dt = (v_leak - v) + r I; spike when v > v_threshold
    param tau = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param v_threshold = 1.0
    param v_reset = 0.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * i_syn) / tau
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirCubaLIF": """neuron NirCubaLIF {   # NIR CubaLIF membrane: tau_mem dv/dt = (v_leak - v) + r w_in I
    param tau_mem = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param v_threshold = 1.0
    param v_reset = 0.0
    param w_in = 1.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * w_in * i_syn) / tau_mem
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirLI": """neuron NirLI {   # NIR LI: tau dv/dt = (v_leak - v) + r I
    param tau = 20 ms
    param r = 1.0
    param v_leak = 0.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * i_syn) / tau
}""",
    "NirCubaLI": """neuron NirCubaLI {   # NIR CubaLI membrane: tau_mem dv/dt = (v_leak - v) + r w_in I
    param tau_mem = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param w_in = 1.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * w_in * i_syn) / tau_mem
}""",
    "NirIF": """neuron NirIF {   # NIR IF: dv/dt = r I (I per second: 1 s)
    param r = 1.0
    param v_threshold = 1.0
    param v_reset = 0.0
    state v = 0.0
    input i_syn
    dv/dt = r * i_syn / (1 s)
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirI": """neuron NirI {   # NIR I: dv/dt = r I
    param r = 1.0
    state v = 0.0
    input i_syn
    dv/dt = r * i_syn / (1 s)
}""",
    "NirCurrent": """synapse NirCurrent {   # NIR's tau_syn dI/dt = -I + S: a spike of weight w adds w/tau_syn
    param tau_syn = 5 ms
    param gain = 1.0   # SumPool2d: the window area (AvgPool2D averages)
    param pulse = 1 s   # a spike's area: NIR's Dirac pulse, or a discrete-time exporter's step
    state i = 0.0
    di/dt = -i / tau_syn
    on_pre { i += gain * w * pulse / tau_syn }
    output i
}""",
    "NirDirac": """synapse NirDirac {   # a Dirac pulse of weight w, held as w/dt for one step
    param gain = 1.0   # SumPool2d: the window area (AvgPool2D averages)
    param pulse = 1 s   # a spike's area: NIR's Dirac pulse, or a discrete-time exporter's step
    state i = 0.0
    on_pre { i += gain * w * pulse / dt }
    output impulse i
}""",
}

#: NIR class -> (snnc model, {nir field: (snnc param, scale to snnc units)})
NEURONS = {
    "LIF": ("NirLIF", {"tau": ("tau", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                       "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1)}),
    "CubaLIF": ("NirCubaLIF", {"tau_mem": ("tau_mem", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                               "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1),
                               "w_in": ("w_in", 1)}),
    "LI": ("NirLI", {"tau": ("tau", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1)}),
    "CubaLI": ("NirCubaLI", {"tau_mem": ("tau_mem", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                             "w_in": ("w_in", 1)}),
    "IF": ("NirIF", {"r": ("r", 1), "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1)}),
    "I": ("NirI", {"r": ("r", 1)}),
}  # fmt: skip
TIME_PARAMS = {"tau", "tau_mem", "tau_syn"}


def stepped(model: str) -> str:
    """A model as a discrete-time exporter steps it: forward Euler (`snnc import --spike-step`)."""
    head, _, body = model.partition("\n")
    if "/dt = " not in body:
        return model  # NirDirac: no ODE
    return f"{head}\n    method = euler   # the exporter's own step (--spike-step)\n{body}"


#: the suffix of a neuron model that takes an Affine bias (`NirLIFBias`)
BIAS = "Bias"


def biased(name: str) -> str:
    """`name`'s model plus `param bias`: NIR's Affine output is W s + b, so b joins the current I.

    LIF/LI/IF/I: I = i_syn + bias in the membrane equation. CubaLIF/CubaLI filter I through
    tau_syn dI/dt = -I + (W s + b), linear in its input: the bias part is its own state i_bias
    (starting at 0, as NIR's states do), tau_syn dI_b/dt = bias - I_b, beside the spikes' NirCurrent.
    """
    text = MODELS[name].replace(f"neuron {name} ", f"neuron {name}{BIAS} ", 1)
    head, _, body = text.partition("\n")
    if "w_in" in body:
        head += "; I = i_syn + i_bias, tau_syn di_bias/dt = bias - i_bias"
        body = body.replace(
            "    state v",
            "    param tau_syn = 5 ms\n    param bias = 0.0\n    state i_bias = 0.0\n    state v",
            1,
        )
        body = body.replace("r * w_in * i_syn", "r * w_in * (i_syn + i_bias)")
        body = body.replace("    spike when", "    di_bias/dt = (bias - i_bias) / tau_syn\n    spike when", 1)
        if "di_bias" not in body:
            body = body.replace("\n}", "\n    di_bias/dt = (bias - i_bias) / tau_syn\n}")
    else:
        head += "; I = i_syn + bias (an Affine bias)"
        body = body.replace("    state v", "    param bias = 0.0\n    state v", 1)
        body = body.replace("r * i_syn", "r * (i_syn + bias)")
    return f"{head}\n{body}"
