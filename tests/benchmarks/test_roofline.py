"""benchmarks/roofline.py: its bandwidth probe measures something, and its work count is each
spike times its fan-out (input 256, hidden 256 + 20) and every neuron stepped once per step."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import roofline  # noqa: E402
from _paired import shd_batch  # noqa: E402


def test_the_probe_reads_faster_from_cache_than_it_could_with_nothing() -> None:
    gbs = roofline.bandwidth(1, 1 << 20, 20, repeats=2)
    assert math.isfinite(gbs) and gbs > 0.5


def test_work_counts_each_spike_times_its_fan_out() -> None:
    from snnc.runtime.artefact import RecordRequest

    import snnc

    net = snnc.compile(str(roofline.EXAMPLE), batch_size=roofline.BATCH, seed=1)
    batch = shd_batch(0, roofline.BATCH)
    work = roofline.work(net, [batch])
    x = batch[0]["x"]
    inputs = sum(int(np.diff(np.concatenate([[0], ex.end_spikes])).sum()) for ex in x)
    hidden = int(net.artefact.run(batch[0], RecordRequest.of(spikes=["h"])).spikes["h"].sum())
    assert inputs > 0 and hidden > 0
    assert work["synaptic_events"] == inputs * 256 + hidden * (256 + 20)
    assert work["neuron_updates"] == (256 + 20) * 1000 * roofline.BATCH
    # forward: 4 B per event; backward: 8 B per event, 4 more per event of a hidden pre population
    states = (256 * 3 + 20 * 2) * 8 * 1000 * roofline.BATCH  # v and one current per incoming projection
    assert work["forward_bytes"] == 4 * work["synaptic_events"] + states
    assert work["backward_bytes"] == 8 * work["synaptic_events"] + 4 * hidden * (256 + 20) + states
