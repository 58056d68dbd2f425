"""Threshold balancing: one scale per layer, so that each layer's firing rates stay within one spike
per step while keeping the ANN's ratios (Diehl et al. 2015, Rueckauer et al. 2017).

An integrate-and-fire neuron with threshold 1, reset by subtraction, fed the rates r_{l-1} (spikes per
step) through W_l fires at r_l = clip(W_l r_{l-1} + b_l, 0, 1) on average. With the ANN's activations
a_l and a scale lambda_l per layer, r_l = a_l / lambda_l holds when the weights become
W_l lambda_{l-1} / lambda_l and the biases b_l / lambda_l; lambda_0 scales the input (its rate is
x / lambda_0). The output layer integrates without a threshold (lambda_L = 1: only the arg max counts).

- simple: every lambda is 1 (the ANN already keeps its activations within [0, 1]).
- data_norm: lambda_l is the `percentile` of layer l's non-zero activations on calibration data
  (99.9: Rueckauer et al.'s robust normalisation; 100 is Diehl et al.'s max-norm).
- spike_norm: lambda_l is the largest input one step brings to a layer-l neuron while the SNN, its
  earlier layers already balanced, runs on the calibration data (Sengupta et al. 2019).
"""

from __future__ import annotations

import numpy as np
from snnc.frontend.onnx_graph import Model
from snnc.frontend.onnx_ops import chain_forward

METHODS = ("simple", "data_norm", "spike_norm", "few_spike")


def _percentile(a: np.ndarray, p: float) -> float:
    nz = a[a > 0]
    value = float(np.percentile(nz, p)) if nz.size else 1.0
    return value if value > 0 else 1.0


def data_norm(model: Model, x: np.ndarray, percentile: float = 99.9) -> list[float]:
    """[lambda_0, lambda_1, ..., lambda_{L-1}] from the ANN's activations on `x` (ONNX layout)."""
    acts = model.activations(x)
    return [_percentile(x, percentile)] + [_percentile(a, percentile) for a in acts[:-1]]


def simulate_layer(
    layer_ops, weight_scale: float, bias_scale: float, spikes: np.ndarray, threshold: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate-and-fire (reset by subtraction, threshold 1) over spikes [steps, batch, *in_shape]:
    (output spikes [steps, batch, *out_shape], each step's input [steps, batch, *out_shape])."""
    steps = spikes.shape[0]
    drive = np.stack([chain_forward(layer_ops, s, with_bias=False) for s in spikes]) * weight_scale
    bias = chain_forward(layer_ops, np.zeros((1, *layer_ops[0].in_shape)))[0] * bias_scale
    drive = drive + bias
    if threshold is None:
        return drive, drive
    v = np.zeros(drive.shape[1:])
    out = np.zeros_like(drive)
    for k in range(steps):
        v += drive[k]
        fired = v >= threshold
        out[k] = fired
        v -= fired * threshold
    return out, drive


def regular_spikes(x: np.ndarray, steps: int) -> np.ndarray:
    """The input coding of `runtime/datasets/analog.py` ("regular"): [steps, batch, *shape]."""
    r = np.clip(x, 0.0, 1.0)
    k = np.arange(steps).reshape(-1, *([1] * r.ndim))
    return (np.floor((k + 1) * r + 1e-9) > np.floor(k * r + 1e-9)).astype(np.float64)


def spike_norm(model: Model, x: np.ndarray, steps: int, input_scale: float) -> list[float]:
    """Layer by layer: lambda_l = the largest one-step input into layer l (see the module docstring).

    The input is rate coded with `input_scale` (lambda_0); layer l is then simulated with threshold 1
    and weights lambda_{l-1} / lambda_l, and its spikes feed layer l + 1."""
    lam = [input_scale]
    spikes = regular_spikes(x / input_scale, steps)
    for layer in model.layers[:-1]:
        _, drive = simulate_layer(
            layer.ops, 1.0, 1.0 / lam[-1], spikes, None
        )  # threshold lambda_l / lambda_{l-1}
        peak = float(drive.max())
        lam.append(peak * lam[-1] if peak > 0 else lam[-1])
        spikes, _ = simulate_layer(layer.ops, lam[-2] / lam[-1], 1.0 / lam[-1], spikes, 1.0)
    return lam
