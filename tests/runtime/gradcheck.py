"""Finite-difference checks of compiled EventProp gradients through the trainer's loss functions.

The forward pass quantises spike times to steps, so the simulated loss is piecewise constant in the
weights at the scale of one step's spike-time shift. The FD slope is therefore the linear coefficient of a
least-squares cubic over `points` weight offsets spread over [-h, h], with h chosen so that the spike times move by many
steps; the spike counts must not change over the interval (a spike appearing or vanishing is a jump
of the loss that no gradient describes), which `fd_gradients` asserts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from snnc.api import compile_network


def compile_double(source: str, *, dt: float, duration: float, batch_size: int):
    return compile_network(
        source, precision="double", dt=dt, duration=duration, batch_size=batch_size
    ).artefact


def spike_counts(art) -> np.ndarray:  # noqa: ANN001
    return np.concatenate(
        [art._arrays[v["cnt"]].ravel() for v in art.manifest["eventprop"]["lists"].values()]
    )


def _slope(art, loss, run, w0, proj, idx, h, points, counts0) -> float | None:  # noqa: ANN001
    offsets = np.linspace(-h, h, points)
    values = []
    for off in offsets:
        trial = {k: v.copy() for k, v in w0.items()}
        trial[proj][idx] += off
        art.set_weights(trial)
        values.append(loss(run())[0])
        if not np.array_equal(spike_counts(art), counts0):
            return None
    # a cubic fit: its linear coefficient is the slope at 0 without the curvature bias of a line
    return float(np.polyfit(offsets, values, 3)[2])


def fd_gradients(
    art,  # noqa: ANN001
    loss: Callable[[object], tuple[float, dict[str, np.ndarray]]],
    run: Callable[[], object],
    h: float,
    points: int = 15,
    shrink: int = 3,
    projections: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Least-squares slope of `loss(run())` along every weight (of `projections`, default all),
    over offsets in [-h, h].

    Where a spike appears or vanishes inside [-h, h] the interval is halved (up to `shrink` times);
    if that does not help the weight's FD is meaningless and the check fails loudly.
    """
    w0 = art.get_weights()
    run()
    counts0 = spike_counts(art)
    out: dict[str, np.ndarray] = {}
    for proj, w in w0.items():
        if projections is not None and proj not in projections:
            continue
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            for level in range(shrink + 1):
                slope = _slope(art, loss, run, w0, proj, idx, h / 2**level, points, counts0)
                if slope is not None:
                    break
            assert slope is not None, f"spike counts change within ±{h / 2**shrink} of {proj}{idx}"
            fd[idx] = slope
        out[proj] = fd
    art.set_weights(w0)
    return out


def compare(grad: np.ndarray, fd: np.ndarray) -> tuple[float, float]:
    """(cosine similarity, relative error ‖g − fd‖ / ‖fd‖) of one weight matrix."""
    a, b = np.ravel(grad), np.ravel(fd)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return cos, float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check_against_fd(
    art,  # noqa: ANN001
    x: list,
    target: np.ndarray,
    loss: Callable,
    h: float,
    label: str,
    compared: Collection[str] | None = None,
    nonzero: bool = True,
) -> None:
    """The backward pass's gradients of `loss` on input `x` against `fd_gradients` of the simulated
    loss: cos >= 0.99 and rel. err. <= 5 % per projection (`compared`, default every one), and with
    `nonzero` a loss that depends on each of them."""

    def run():  # noqa: ANN202
        return art.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], target)

    grads = art.backward({"out": value(run())[1]})
    fd = fd_gradients(art, value, run, h=h)
    for proj in compared if compared is not None else fd:
        cos, rel = compare(grads[proj], fd[proj])
        print(f"{label} {proj}: cos {cos:.5f} rel {rel:.4f}")
        if nonzero:
            assert np.linalg.norm(fd[proj]) > 0, f"{proj}: the loss does not depend on these weights here"
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"
