"""The dimension of each train-block option snnc knows, so that a number with the wrong unit is an
error where it is written.

Train-block calls (`yinyang(t_min = 2 ms)`, `adam(lr = 0.01)`, `eprop(f_target = 10 Hz)`) reach the
runtime as plain numbers in base units (`frontend/values.py`): `t_min = 2 mV` became 2.0 ms and
`lr = 0.01 ms` the rate 0.01, silently. A number without a unit keeps its meaning (the option's
base unit), as before; options not listed here are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import describe
from snnc.frontend.unparse import unparse
from snnc.frontend.values import quantity
from snnc.ir.diagnostics import DiagnosticBag
from snnc.ir.units import DIMENSIONLESS, FREQUENCY, TIME, Dim

_TIMES = (
    "t_min t_max duration dt cue gap delay recall bin max_time tau_reg tau0 tau1 t_nospike delta error_start"
).split()
_FREQUENCIES = "f_target freq_min freq_max input_rate cue_rate noise_rate max_rate min_crossing_rate".split()
_PLAIN = (
    "lr momentum beta1 beta2 epsilon clamp gamma step_size c_reg strength nu l1 connectivity p n "
    "train test seed channels inputs components examples max_spikes temperature alpha r_small r_big "
    "scale k test_fraction p_favoured cues group lambda_upper lambda_lower nu_upper "
    "reg_lambda_upper reg_lambda_lower reg_nu_upper"
).split()
OPTION_DIMS: dict[str, Dim] = {
    **{n: TIME for n in _TIMES},
    **{n: FREQUENCY for n in _FREQUENCIES},
    **{n: DIMENSIONLESS for n in _PLAIN},
}
_NUMERIC = (ast.Number, ast.UnaryOp, ast.BinOp)


def call_options(e: ast.Expr) -> Iterator[tuple[ast.Call, ast.Keyword]]:
    """Each option of call `e`, or of the calls of a tuple (`augment = (shift(...), drop(...))`)."""
    calls = e.items if isinstance(e, ast.Tuple) else (e,)
    for c in calls:
        if isinstance(c, ast.Call):
            for kw in c.kwargs:
                yield c, kw


def numeric_quantity(value: ast.Expr) -> tuple[float, Dim, bool] | None:
    """(value in base units, dimension, whether it is zero) of a number written as an option, or None
    for anything else; its own errors were reported when it was read."""
    if not isinstance(value, _NUMERIC):
        return None
    return quantity(value, DiagnosticBag())


def check_option_units(e: ast.Expr, bag: DiagnosticBag) -> None:
    """Report each numeric option of call `e` (or of the calls of a tuple) whose unit is not its
    option's dimension."""
    for c, kw in call_options(e):
        want = OPTION_DIMS.get(kw.name)
        q = numeric_quantity(kw.value) if want is not None else None
        if q is None:
            continue
        _, dim, zero = q
        if zero or dim.dimensionless or dim == want:
            continue
        bag.error(
            M.DIM,
            f"{c.func}({kw.name} = {unparse(kw.value)}) has dimension {describe(dim)}, but "
            f"{kw.name} is {describe(want)}",
            kw.value.span,
            "write it without a unit" if want.dimensionless else None,
        )
