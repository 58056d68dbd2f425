"""Per-neuron spike buffers for gradient passes: times recorded, overflow counted, never dropped silently."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.artefact import RecordRequest

from snnc.api import build_compiled, compile_network
from tests.backends.netbuild import network
from tests.runtime.test_simulation import bias_lif


def test_event_buffers_hold_spike_times_and_count_overflow() -> None:
    net = network(
        [("h", "BiasLIF", "hidden", (2,), {"params": {"I": 3.0}})],
        [],
        [bias_lif()],
        dt_ms=0.5,
        duration=100.0,
    )
    compiled = build_compiled(net, batch_size=2, event_buffer=3)
    res = compiled.run({}, RecordRequest.of(spikes=["h"]))
    times, counts = res.events["h"]
    assert times.shape == (2, 2, 3)
    raster = res.spikes["h"]
    for b in range(2):
        for n in range(2):
            steps = np.nonzero(raster[b, :, n])[0]
            assert counts[b, n] == steps.size > 3  # more spikes than the buffer holds: overflow visible
            np.testing.assert_allclose(times[b, n], steps[:3] * 0.5)


def test_compile_network_rejects_unknown_backend_and_options() -> None:
    with pytest.raises(DiagnosticError) as info:
        compile_network("x.snn", backend="fpga")
    assert info.value.diagnostics[0].code == "E-BACKEND"
    with pytest.raises(TypeError):
        compile_network("x.snn", batchsize=3)
