"""Bellec et al.'s evidence-accumulation trials (`runtime/datasets/evidence.py`): seeded, balanced,
laid out as documented, and labelled by the majority of the cues."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.runtime.datasets import DatasetError, load_dataset
from snnc.runtime.datasets.evidence import LEFT, NOISE, RECALL, RIGHT, evidence

SMALL = dict(train=40, test=20, seed=3)


def _group(ids: np.ndarray, g: int, size: int = 10) -> np.ndarray:
    return (ids >= g * size) & (ids < (g + 1) * size)


def test_it_is_seeded_and_the_splits_are_independent():
    a, b, c = evidence(**SMALL), evidence(**SMALL), evidence(**{**SMALL, "seed": 4})
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(a, split).times, getattr(b, split).times)
        np.testing.assert_array_equal(getattr(a, split).ids, getattr(b, split).ids)
        np.testing.assert_array_equal(getattr(a, split).labels, getattr(b, split).labels)
    assert not np.array_equal(a.train.times, c.train.times)
    assert not np.array_equal(a.train.times[:500], a.test.times[:500])
    # the test trials do not depend on how many training trials are drawn
    d = evidence(**{**SMALL, "train": 7})
    np.testing.assert_array_equal(d.test.times, a.test.times)


def test_labels_are_balanced_and_the_majority_of_the_cues():
    d = evidence(train=101, test=50, seed=1)
    assert abs(int(d.train.labels.sum()) - 50) <= 1 and int(d.test.labels.sum()) == 25
    for split in ("train", "test"):
        sides = d.meta["cue_sides"][split]
        labels = getattr(d, split).labels
        assert sides.shape == (len(labels), 7)
        np.testing.assert_array_equal(labels, (sides.sum(1) >= 4).astype(int))
        # trials favour one side with p = 0.7: E[max(k, 7 - k)] / 7 = 0.727 for k ~ Binomial(7, 0.7)
        agree = (sides == labels[:, None]).mean()
        assert agree == pytest.approx(0.727, abs=0.04)


def test_spikes_follow_the_documented_layout():
    d = evidence(train=30, test=2, seed=2)
    assert d.num_inputs == 40 and d.num_classes == 2
    assert d.meta["duration"] == 7 * 150 + 1050 + 150 == 2250.0
    assert d.meta["recall_start"] == 2100.0 and d.meta["steps"] == 2250
    left_counts, right_counts = [], []
    for i in range(30):
        t, ids = d.train.example(i)
        assert np.all((t >= 0) & (t < 2250)) and np.all(t == np.round(t))
        assert len(np.unique(t * 100 + ids)) == t.size  # at most one spike per neuron and step
        sides = d.meta["cue_sides"]["train"][i]
        for g, counts in ((LEFT, left_counts), (RIGHT, right_counts)):
            tg = t[_group(ids, g)]
            slot, phase = np.divmod(tg, 150.0)
            # cue spikes only inside cue windows (after the 50 ms gap), only in this side's slots
            assert np.all((phase >= 50) & (slot < 7))
            assert set(slot.astype(int)) <= set(np.nonzero(sides == g)[0])
            counts.append(tg.size / max(1, (sides == g).sum()))
        recall = t[_group(ids, RECALL)]
        assert recall.size > 0 and np.all(recall >= 2100)
        noise = t[_group(ids, NOISE)]
        assert noise.size > 0 and noise.min() < 500 and noise.max() > 1500  # throughout the trial
    # 40 Hz over a 100 ms cue for 10 neurons: about 40 spikes per cue; noise at 10 Hz for 2.25 s
    assert np.mean(left_counts + right_counts) == pytest.approx(40.0 * (1 - np.exp(-0.04)) / 0.04, rel=0.1)
    noise_total = sum(_group(d.train.example(i)[1], NOISE).sum() for i in range(30))
    assert noise_total / 30 == pytest.approx(10 * 2250 * (1 - np.exp(-0.01)), rel=0.1)


def test_bad_arguments_are_dataset_diagnostics():
    with pytest.raises(DatasetError, match="odd"):
        load_dataset("evidence", {"cues": 6})
    with pytest.raises(DatasetError, match="p_favoured"):
        load_dataset("evidence", {"p_favoured": 0.5})
    with pytest.raises(DatasetError) as e:
        load_dataset("evidence", {"cue_rates": 0.04})
    assert "cue_rate" in str(e.value) + str(e.value.hint)


def test_the_trials_are_cached_and_the_cache_holds_the_drawn_trials(tmp_path, monkeypatch):
    """Drawing the example's 5120 trials took ~10 s at every `snnc train`; they are cached (as SHD's
    preprocessing is, `spike_cache.py`), keyed by every argument, and the cache gives back exactly
    what the generator draws."""
    from snnc.runtime.datasets import evidence as module

    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    first = evidence(**SMALL)
    folders = sorted(p.name for p in (tmp_path / "datasets").iterdir() if p.is_dir())
    assert len(folders) == 2 and all(f.startswith("evidence-") for f in folders)
    calls = []
    monkeypatch.setattr(
        module, "_split", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(AssertionError)
    )
    again = evidence(**SMALL)  # from the cache: the generator is not called
    assert calls == []
    rates_of = lambda s: (module.trial_rates(s, 10, 100.0, 50.0, 1050.0, 150.0, 0.04, 0.01, 1.0), 1.0)  # noqa: E731
    monkeypatch.undo()
    for k, split in enumerate(("train", "test")):
        drawn, sides = module._split(
            SMALL[split], np.random.default_rng([SMALL["seed"], k]), 7, 0.7, rates_of
        )
        for got in (getattr(first, split), getattr(again, split)):
            for name in ("times", "ids", "offsets", "labels"):
                np.testing.assert_array_equal(
                    np.asarray(getattr(got, name)), np.asarray(getattr(drawn, name))
                )
        np.testing.assert_array_equal(again.meta["cue_sides"][split], sides)
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    evidence(**{**SMALL, "noise_rate": 0.02})  # another argument, another cache
    assert len([p for p in (tmp_path / "datasets").iterdir() if p.is_dir()]) == 4
