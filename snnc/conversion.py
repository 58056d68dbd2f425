"""What `snnc convert` does: an ONNX model (a trained ANN) -> a `.snn` spiking network plus weights.

Reading and checking the model is `frontend/onnx_graph.py`, threshold balancing
`frontend/convert_norm.py`, writing `frontend/onnx_convert.py`; this module ties them to the
command's options and reads the calibration data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from snnc.frontend.onnx_convert import Converted, Settings, data_path, write_snn
from snnc.frontend.onnx_ops import onnx_error
from snnc.paths import refuse_overwriting_inputs

SPIKE_NORM_EXAMPLES = 256


def _calibration(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    from snnc.runtime.datasets.analog import read_analog
    from snnc.runtime.errors import RuntimeConfigError

    try:
        x = np.asarray(read_analog(path)["x"], np.float64)
    except RuntimeConfigError as e:
        raise onnx_error(str(e), e.hint) from None
    if tuple(x.shape[1:]) != tuple(shape):
        raise onnx_error(
            f"--data '{path}': x has examples of shape {tuple(x.shape[1:])}, the model's input is {shape}",
            "x holds the ANN's inputs, [examples, *input shape] in the model's own layout",
        )
    return x


def convert_onnx(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    method: str = "data_norm",
    data: str | os.PathLike | None = None,
    timesteps: int = 100,
    percentile: float = 99.9,
    coding: str = "regular",
    steps_per_layer: int = 8,
) -> Converted:
    """`snnc convert model.onnx -o model.snn [--method M] [--data CALIB.npz] [--timesteps N]`."""
    from snnc.frontend import convert_norm
    from snnc.frontend.onnx_graph import read_model, to_layers

    if method not in convert_norm.METHODS:
        raise onnx_error(
            f"unknown conversion method '{method}'", f"methods: {', '.join(convert_norm.METHODS)}"
        )
    if method == "few_spike" and coding != "regular":
        raise onnx_error("--method few_spike codes its input itself; --coding does not apply")
    if not 1 <= steps_per_layer <= 24:
        raise onnx_error(f"--steps-per-layer must lie in 1 .. 24, not {steps_per_layer}")
    if timesteps < 1:
        raise onnx_error(f"--timesteps must be at least 1, not {timesteps}")
    if not 0 < percentile <= 100:
        raise onnx_error(f"--percentile must lie in (0, 100], not {percentile}")
    src = Path(source)
    model = to_layers(read_model(src))
    out = Path(output) if output else src.with_suffix(".snn")
    refuse_overwriting_inputs("the .snn file", out, (src, data))
    calib = _calibration(Path(data), model.input_shape) if data is not None else None
    if method in ("data_norm", "spike_norm", "few_spike") and calib is None:
        raise onnx_error(
            f"--method {method} needs calibration data", "pass --data CALIB.npz (arrays x and y)"
        )
    if method == "simple":
        scales = [1.0] * len(model.layers)
    elif method in ("data_norm", "few_spike"):  # few_spike: lambda is each layer's range alpha
        scales = convert_norm.data_norm(model, calib, percentile)
    else:
        lam0 = convert_norm.data_norm(model, calib, percentile)[0]
        # a numpy simulation of every layer: the first SPIKE_NORM_EXAMPLES examples suffice for a peak
        scales = convert_norm.spike_norm(model, calib[:SPIKE_NORM_EXAMPLES], timesteps, lam0)
    settings = Settings(
        method, scales, timesteps, data_path(Path(data), out) if data else None, coding, k=steps_per_layer
    )
    return write_snn(model, out, settings)
