"""Threads of the C backend (backends/c/templates/team.c.j2): the team hands a batch's trials out
in guided chunks; results never depend on how many threads ran them, whether a waiting thread
spun or slept, or which thread took which trial; a forked child starts its own helpers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _threads_of_this_process() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture(scope="module")
def yinyang():  # noqa: ANN201
    from snnc.runtime.session import load_data, xy

    from snnc.api import compile_network

    net = compile_network(str(ROOT / "examples/yinyang_eventprop.snn"), batch_size=5)
    x, _ = xy(net.network, load_data(net.network).train)
    batch = {k: [v[i] for i in range(5)] for k, v in x.items()}
    return net, batch


def _forward_backward(net, batch):  # noqa: ANN001, ANN202
    res = net.artefact.run(batch)
    grads = net.artefact.backward({"out": np.ones((5, 3))})
    return res.readouts["out"].copy(), {k: g.copy() for k, g in grads.items()}


def _assert_same(a, b) -> None:  # noqa: ANN001
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k])


def test_threads_option_is_checked_before_compiling():
    from snnc.api import compile_network

    with pytest.raises(ValueError, match="threads must be at least 1"):
        compile_network("examples/nowhere.snn", threads=0)


def test_gradients_do_not_depend_on_threads_or_waiting(yinyang):  # noqa: ANN001
    """Each trial's arrays are its own, so readouts and gradients are bitwise the same for 1 to 8
    threads (more than trials and than cores), with waiting threads that sleep at once (spin 0),
    spin briefly, or spin the default time; a pause between batches lets the helpers fall asleep."""
    net, batch = yinyang
    net.set_threads(1)
    reference = _forward_backward(net, batch)
    for spin_ns in (0, 2_000, 200_000):
        net.artefact.set_spin_ns(spin_ns)
        for threads in (2, 3, 8):
            net.set_threads(threads)
            for pause in (0.0, 0.002):
                time.sleep(pause)
                _assert_same(_forward_backward(net, batch), reference)
    net.artefact.set_spin_ns(200_000)
    net.set_threads(1)


def test_helpers_start_once_and_only_for_batches_of_several_trials(yinyang):  # noqa: ANN001
    """A batch of one runs on the calling thread (no helper to wake); a batch of five with three
    threads starts two helpers, which then serve every later batch."""
    from snnc.api import compile_network

    net, batch = yinyang
    single = compile_network(str(ROOT / "examples/yinyang_eventprop.snn"), batch_size=1)
    single.set_threads(4)
    before = _threads_of_this_process()
    single.artefact.run({k: v[:1] for k, v in batch.items()})
    assert _threads_of_this_process() == before

    net.set_threads(3)
    _forward_backward(net, batch)
    started = _threads_of_this_process()
    for _ in range(3):
        _forward_backward(net, batch)
    assert _threads_of_this_process() == started
    net.set_threads(1)


def test_idle_helpers_end_and_come_back(yinyang):  # noqa: ANN001
    """Helpers asleep for a second end (a process that compiled many networks keeps no threads for
    the ones it no longer runs); the next batch starts them again and computes the same."""
    net, batch = yinyang
    net.set_threads(1)
    reference = _forward_backward(net, batch)
    time.sleep(1.5)  # helpers that earlier tests started end
    before = _threads_of_this_process()
    net.set_threads(3)
    _assert_same(_forward_backward(net, batch), reference)
    assert _threads_of_this_process() == before + 2
    deadline = time.monotonic() + 10
    while _threads_of_this_process() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _threads_of_this_process() == before
    _assert_same(_forward_backward(net, batch), reference)
    assert _threads_of_this_process() == before + 2
    net.set_threads(1)


def test_many_short_batches_with_changing_teams_agree(yinyang):  # noqa: ANN001
    """Races in handing out or taking back a batch would show as a wrong or missing trial: 150
    batches, each with 1-4 threads and one of three waits, against the one-thread result."""
    net, batch = yinyang
    net.set_threads(1)
    reference = _forward_backward(net, batch)
    rng = np.random.default_rng(3)
    for _ in range(150):
        net.set_threads(int(rng.integers(1, 5)))
        net.artefact.set_spin_ns(int(rng.choice([0, 1_000, 200_000])))
        _assert_same(_forward_backward(net, batch), reference)
    net.artefact.set_spin_ns(200_000)
    net.set_threads(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_helpers(yinyang):  # noqa: ANN001
    """The child of a process whose helpers run has none of them (fork copies only the calling
    thread): it starts its own, never waits for threads that do not exist (a hang), and computes
    the same batch."""
    net, batch = yinyang
    net.set_threads(2)
    expected = _forward_backward(net, batch)  # helpers now run in this process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one batch with two threads, its result through the pipe
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                result = _forward_backward(net, batch)
                pickle.dump((result, _threads_of_this_process()), out)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as inp:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on its first batch with two threads")
        got, threads_of_child = pickle.load(inp)
    _assert_same(got, expected)
    assert threads_of_child == 2  # the child's own thread and the helper it started
    net.set_threads(1)


def test_default_threads_follow_omp_num_threads_or_the_cores(tmp_path: Path) -> None:
    """Without set_threads a library runs one thread per core this process may use, or
    $OMP_NUM_THREADS as numerical libraries read it (README's MPI advice sets it to 1)."""
    code = textwrap.dedent(
        f"""
        import os, snnc
        net = snnc.compile({str(ROOT / "examples/yinyang_eventprop.snn")!r}, batch_size=4)
        print(net.artefact._lib.snnc_max_threads(), len(os.sched_getaffinity(0)))
        """
    )
    env = {**os.environ, "SNNC_CACHE_DIR": os.environ.get("SNNC_CACHE_DIR", str(tmp_path))}
    env.pop("OMP_NUM_THREADS", None)
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    threads, cores = map(int, plain.stdout.split())
    assert threads == cores
    env["OMP_NUM_THREADS"] = "3"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(chosen.stdout.split()[0]) == 3


TINY = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network tiny {
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 3.0, sd = 3.0)), Exponential(tau = 5 ms)
}
"""


def _tiny(tmp_path: Path, threads: int | None, name: str = "tiny"):  # noqa: ANN202
    """The tiny network as its own library: networks of one library share its threads setting."""
    from snnc.api import compile_network

    src = tmp_path / f"{name}.snn"
    src.write_text(TINY.replace("network tiny", f"network {name}"), encoding="utf-8")
    return compile_network(str(src), batch_size=4, dt=0.01, duration=20.0, threads=threads)


def _tiny_batch() -> dict:
    from snnc.runtime.encoding import latency_encode

    return {"x": latency_encode(np.random.default_rng(0).random((4, 3)), 2.0, 15.0)}


def test_where_nobody_chose_the_threads_the_library_times_the_team_against_one_thread(tmp_path: Path):
    """Without set_threads (and without $OMP_NUM_THREADS) the first four batches alternate the team
    and one thread, timed; later batches run as the faster did, and every batch computes the same."""
    if len(os.sched_getaffinity(0)) < 2 or os.environ.get("OMP_NUM_THREADS"):
        pytest.skip("needs two cores and no OMP_NUM_THREADS")
    from snnc.runtime.artefact import RecordRequest

    tuned, alone = _tiny(tmp_path, None, "tuned"), _tiny(tmp_path, 1, "alone")
    x = _tiny_batch()
    record = RecordRequest.of(spikes=["h"])
    expected = alone.run(x, record).spikes["h"]
    teams = []
    for _ in range(12):
        np.testing.assert_array_equal(tuned.run(x, record).spikes["h"], expected)
        teams.append(tuned.artefact.last_team())
    assert teams[:4] == [2, 1, 2, 1]
    assert len(set(teams[4:])) == 1 and teams[4] in (1, 2)  # the check's choice, kept


def test_threads_someone_chose_are_never_tuned(tmp_path: Path) -> None:
    net = _tiny(tmp_path, 2, "chosen")
    x = _tiny_batch()
    for _ in range(8):
        net.run(x)
        assert net.artefact.last_team() == 2
