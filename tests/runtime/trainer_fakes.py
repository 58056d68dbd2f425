"""A differentiable numpy 'artefact' with exact gradients, to test the training loop by itself.

h = tanh(x W1), out = h W2 (the readout), and a stand-in for hidden spike counts c = h² (reported as
the event-buffer counts of "h") so that the regulariser path has a gradient as well. Like a compiled artefact it is allocated for a fixed batch
size and pads a short last batch with zero inputs.
"""

from __future__ import annotations

import numpy as np
from snnc.runtime.artefact import RunResult


class FakeArtefact:
    def __init__(self, n_in=4, n_hidden=8, n_out=3, batch_size=5, seed=0, time_readout=False):
        rng = np.random.default_rng(seed)
        self.weights = {
            "x_to_h": (rng.normal(0, 0.8, (n_in, n_hidden))).astype(np.float32),
            "h_to_out": (rng.normal(0, 0.8, (n_hidden, n_out))).astype(np.float32),
        }
        self.batch_size = batch_size
        self.allocated = None
        self.forward_calls = 0
        self.seen_rows: list[np.ndarray] = []
        self.time_readout = time_readout
        if time_readout:
            self.readouts = {"out": "first_spike_time"}

    def allocate(self, batch_size):
        self.allocated = batch_size

    def run(self, inputs, record=None, *, num_steps=None, example_ids=None):
        x = np.asarray(inputs["x"], dtype=np.float64)
        assert x.shape[0] <= self.allocated
        self.seen_rows.append(x.copy())
        pad = np.zeros((self.allocated, x.shape[1]))
        pad[: x.shape[0]] = x
        self._x = pad
        self._h = np.tanh(pad @ self.weights["x_to_h"].astype(np.float64))
        out = self._h @ self.weights["h_to_out"].astype(np.float64)
        if self.time_readout:  # "spike times": positive, decreasing in the drive
            out = 10.0 + 5.0 * np.tanh(-out)
            self._out_pre = out
        self.forward_calls += 1
        self.last_record = record
        self.example_ids = example_ids
        res = RunResult(readouts={"out": out}, events={"h": (np.zeros((self.allocated, 0, 1)), self._h**2)})
        if record is not None and "h" in record.spikes:
            res.spikes["h"] = (self._h**2 > 0.25)[:, None, :]
        return res

    def backward(self, dl_dy):
        d_out = dl_dy["out"]
        if self.time_readout:
            d_out = d_out * -5.0 * (1.0 - ((self._out_pre - 10.0) / 5.0) ** 2)
        g2 = self._h.T @ d_out
        d_h = d_out @ self.weights["h_to_out"].astype(np.float64).T
        if "h.spike_count" in dl_dy:
            d_h = d_h + 2.0 * self._h * dl_dy["h.spike_count"]
        d_pre = d_h * (1.0 - self._h**2)
        g1 = self._x.T @ d_pre
        return {"x_to_h": g1, "h_to_out": g2}


def blobs(n=40, n_in=4, n_classes=3, seed=1):
    """Separable-ish Gaussian blobs: features [n, n_in], labels [n]."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, n_in))
    labels = rng.integers(0, n_classes, n)
    x = centres[labels] + rng.normal(0, 0.4, (n, n_in))
    return x.astype(np.float32), labels
