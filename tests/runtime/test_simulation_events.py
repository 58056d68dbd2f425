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


def test_a_state_named_spikes_does_not_clash_with_the_spike_raster() -> None:
    import sympy
    from snnc.ir.discrete import DiscreteModel
    from snnc.ir.model import Assign, Model, State
    from snnc.ir.symbols import sym

    counter = Model("Counter", "neuron", states={"spikes": State("spikes", 0.0)})
    disc = DiscreteModel(
        "Counter", "euler", "hand-built", update=(Assign("spikes", "=", sym("spikes") + sympy.Float(1.0)),)
    )
    net = network([("h", "Counter", "hidden", (3,), {})], [], [(counter, disc)], dt_ms=1.0, duration=5.0)
    res = build_compiled(net).run({}, RecordRequest.of(spikes=["h"], vars=[("h", "spikes")]))
    np.testing.assert_allclose(res.vars[("h", "spikes")][0, :, 0], [1, 2, 3, 4, 5])
    assert not res.spikes["h"].any()


def test_event_buffers_of_a_kept_result_survive_the_next_run() -> None:
    """Events are copied out lazily (a result nobody reads costs no copy) and the buffers are
    refilled only as far as the last run wrote: a kept result keeps its times, and a shorter run
    leaves no stale times behind its counts."""
    net = network(
        [("h", "BiasLIF", "hidden", (2,), {"params": {"I": 3.0}})],
        [],
        [bias_lif()],
        dt_ms=0.5,
        duration=100.0,
    )
    compiled = build_compiled(net, batch_size=2, event_buffer=3)
    art = compiled.artefact
    init = next(a["init"] for a in art.manifest["arrays"] if a["kind"] == "events" and a["var"] == "times")
    full = compiled.run({})
    kept = compiled.run({})  # not read before the next run
    short = compiled.run({}, num_steps=1)
    times, counts = kept.events["h"]
    np.testing.assert_array_equal(times, full.events["h"][0])
    assert counts.min() > 3
    short_times, short_counts = short.events["h"]
    assert short_counts.max() == 0
    np.testing.assert_array_equal(short_times, np.full_like(short_times, init))
