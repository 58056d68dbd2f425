"""Few-spike coding (Stöckl & Maass 2021): each layer sends its ReLU activations in K steps, one
binary digit per step, so a network of L layers answers in about (L + 1) K steps instead of hundreds.

A few-spike neuron of layer l receives in steps (l-1)K+1 .. lK and emits in steps lK .. (l+1)K-1. A
spike in phase j (0 .. K-1) of its window stands for alpha 2^-(j+1) (alpha: the layer's range, the
data_norm scale): the neuron spikes when v >= alpha 2^-(j+1) and subtracts it, so its spikes are the
binary digits of min(a, alpha) with K bits; a negative v never spikes (the ReLU). The layer after
weighs a spike arriving in phase j by alpha_in 2^-(j+1) (the paper's d(t)), so the weights stay the
ANN's own. This is the paper's FS-neuron with h(t) = T(t) = d(t) = alpha 2^-(t+1) (the hand-made
binary code, not its fitted coefficients). The input is coded the same way by the analog data set
(coding "few_spike"); the output layer adds up its inputs and is read at the end (readout `var`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snnc.frontend.onnx_convert import Scheme, Settings

MODELS = """\
neuron FewSpikeIF {   # a few-spike neuron (Stoeckl & Maass 2021) with a binary code, K steps per layer
    param K        = 8     # steps per layer
    param layer    = 1     # receives in steps (layer - 1) K + 1 .. layer K, emits in layer K .. (layer + 1) K - 1
    param alpha_in = 1.0   # a spike of the layer before, in phase j of its window, carries alpha_in 2^-(j+1)
    param alpha    = 1.0   # this layer's range: in phase j it spikes when v >= alpha 2^-(j+1)
    param bias     = 0.0   # the ANN's bias, added once, in the first step of the receiving window
    derived first_in  = (layer - 1) * K
    derived first_out = layer * K
    state step = 0.0       # the time step, counted (after the update: the step being finished, + 1)
    state v = 0.0
    input i_syn
    method = euler         # v += gain(step) i_syn in each step, exactly
    dstep/dt = 1 / dt
    dv/dt = (alpha_in * exp(-(step - first_in) * log(2)) * heaviside(step - first_in - 0.5) * heaviside(first_out + 0.5 - step) * i_syn + bias * heaviside(step - first_in - 0.5) * heaviside(first_in + 1.5 - step)) / dt
    spike when v >= alpha * exp(-(step - first_out) * log(2)) + 1e30 * heaviside(first_out + 0.5 - step) + 1e30 * heaviside(step - first_out - K - 0.5)
    reset { v = v - alpha * exp(-(step - first_out) * log(2)) }
}

neuron FewSpikeSum {   # the output layer: adds up its weighted inputs (the class is the arg max of v)
    param K        = 8
    param layer    = 1
    param alpha_in = 1.0
    param bias     = 0.0
    derived first_in  = (layer - 1) * K
    derived first_out = layer * K
    state step = 0.0
    state v = 0.0
    input i_syn
    method = euler
    dstep/dt = 1 / dt
    dv/dt = (alpha_in * exp(-(step - first_in) * log(2)) * heaviside(step - first_in - 0.5) * heaviside(first_out + 0.5 - step) * i_syn + bias * heaviside(step - first_in - 0.5) * heaviside(first_in + 1.5 - step)) / dt
}
"""


def few_spike_scheme(s: Settings, layers: int) -> Scheme:
    """Populations of layer l (1-based) take K, their layer index and the ranges alpha_(l-1), alpha_l."""
    from snnc.frontend.onnx_convert import Scheme

    alpha = s.scales
    args = []
    for k in range(layers):
        own = f", alpha = {alpha[k + 1]!r}" if k + 1 < layers else ""
        args.append(f", K = {s.k}, layer = {k + 1}, alpha_in = {alpha[k]!r}{own}")
    lam = ", ".join(f"{v:.6g}" for v in alpha)
    about = (
        f"# Few-spike coding (Stoeckl & Maass 2021): each layer sends its activations in K = {s.k} steps,\n"
        "# one binary digit per step (see FewSpikeIF); the weights are the ANN's own and each population\n"
        f"# states its range alpha (data_norm's lambda), input first: {lam}.\n"
        "# The output population adds up its inputs; its v at the end holds the ANN's logits.\n"
    )
    return Scheme(
        MODELS,
        "SpikeInput, Delta",
        "Delta",
        "FewSpikeIF",
        "FewSpikeSum",
        "var",
        layers * s.k + 1,  # the output layer receives until step layers K
        [1.0] * layers,
        [1.0] * layers,  # biases in the ANN's units too
        args,
        f'coding = "few_spike", k = {s.k}',
        about,
    )
