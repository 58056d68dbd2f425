"""The values a train-block option may take, where its meaning bounds it, so that `snnc check` refuses
an option that would train silently on something else, at the value.

`spike_count(strength = -1)` pushed spike counts away from their target, `eprop(reset_state = 0.5)`
and `yinyang(bias = 3)` were read as true, `yinyang(t_min = -5 ms)` put spikes before the trial's
start, `exponential_decay(gamma = -1)` trained uphill every other epoch. Listed here are single
values the runtime took without a word; what needs two values (`t_max > t_min`) or a data file, and
the ranges the optimisers, losses and schedules check themselves (`runtime/optimisers.py` ...),
stay with that code, which reports them at the setting when the run starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.option_dims import call_options, numeric_quantity
from snnc.frontend.unparse import unparse
from snnc.ir.diagnostics import DiagnosticBag


@dataclass(frozen=True)
class Bound:
    """Numbers from `low` on (above it when `open`), or a switch (`true` / `false` only)."""

    what: str  # the option's meaning, for the message
    low: float = 0.0
    open: bool = False
    switch: bool = False

    def wanted(self) -> str:
        if self.switch:
            return "true or false"
        return f"{'above' if self.open else 'at least'} {self.low:g}"


_STRENGTH = Bound("a regularisation strength (a negative one pushes spike counts the wrong way)")
_TARGET = Bound("a target spike count per neuron and trial")
_FACTOR = Bound("a factor on the learning rate (a negative one makes it negative every other step)")
_START = Bound("the time of the earliest input spike (a trial starts at 0 ms)")
_BIN = Bound("the width of a time bin", open=True)
_REGULARISER = {
    "strength": _STRENGTH,
    "lambda_upper": _STRENGTH,
    "lambda_lower": _STRENGTH,
    "nu": _TARGET,
    "nu_upper": _TARGET,
    "target": _TARGET,
}
_SPIKE_FILE = {"bin": _BIN, "max_time": Bound("the time after which spikes are dropped", open=True)}
_NO_SPIKE = Bound("the time given to an output neuron that does not spike")
_TTFS = {
    "alpha": Bound("the strength of the push towards early spikes (a negative one pushes them late)"),
    "t_nospike": _NO_SPIKE,
}
_RELATIVE = {
    "delta": Bound("how much later than the right neuron the others should fire (a negative one: earlier)"),
    "t_nospike": _NO_SPIKE,
}

#: call -> option -> its bound
OPTION_RANGES: dict[str, dict[str, Bound]] = {
    "spike_count": _REGULARISER,
    "eventprop": {
        "reg_lambda_upper": _STRENGTH,
        "reg_lambda_lower": _STRENGTH,
        "reg_nu_upper": _TARGET,
    },
    "eprop": {
        "c_reg": _STRENGTH,
        "f_target": Bound("a target firing rate"),
        "error_start": Bound("the time errors start to count (a trial starts at 0 ms)"),
        "train_output_bias": Bound("whether the output biases learn", switch=True),
        "reset_state": Bound("whether state is reset between examples", switch=True),
        "keep_reset_path": Bound("whether the reset's path is kept", switch=True),
    },
    "yinyang": {"bias": Bound("whether a bias neuron spikes at t_min", switch=True), "t_min": _START},
    "digits": {"t_min": _START, "max_rate": Bound("a firing rate")},
    "analog": {"channels_first": Bound("whether the images are [channels, height, width]", switch=True)},
    "shd": _SPIKE_FILE,
    "ssc": _SPIKE_FILE,
    "exponential_decay": {"gamma": _FACTOR},
    "step_decay": {"gamma": _FACTOR},
    "sparse_categorical_crossentropy": {"per_timestep": Bound("whether the loss is per step", switch=True)},
    **dict.fromkeys(("ttfs_crossentropy", "time_to_first_spike_crossentropy"), _TTFS),
    **dict.fromkeys(("relative_mse", "relative_mean_square_error"), _RELATIVE),
}


def _outside(value: ast.Expr, bound: Bound) -> bool:
    """Whether `value` is outside `bound` (a value that is not a number is left to its own check)."""
    if bound.switch:
        return not isinstance(value, ast.Bool)
    q = numeric_quantity(value)
    return q is not None and not (q[0] > bound.low if bound.open else q[0] >= bound.low)


def check_option_ranges(e: ast.Expr, bag: DiagnosticBag) -> None:
    """Report each option of call `e` (or of the calls of a tuple) outside its bound."""
    for c, kw in call_options(e):
        bound = OPTION_RANGES.get(c.func, {}).get(kw.name)
        if bound is None or not _outside(kw.value, bound):
            continue
        bag.error(
            M.VALUE,
            f"{c.func}({kw.name} = {unparse(kw.value)}): {kw.name} is {bound.what}, so it must be "
            f"{bound.wanted()}",
            kw.value.span,
        )
