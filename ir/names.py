"""The names snnc generates, spelled in one place, and the namespace reserved for them (issue 13).

A user identifier never contains `__` and never begins or ends with `_`: the frontend refuses such a
name with E-RESERVED-NAME (`user_name_problem`). Everything a pass or backend generates lives in the
namespace that leaves free, so it can never equal (capture) a name the user wrote:

- a coupled name `<x>__<P>`: param, derived param or state `x` of the synapse of incoming projection
  `P`, as it appears in the post population's equations (`i__x_to_h`, `tau__x_to_h`). Exactly one
  `__`; `P` (`<pre>_to_<post>`, built from user names) contains none.
- every other generated name begins with `__`: a singleton `__<what>` (`__D`, `__k`, `__psi`) or a
  member of a family `__<family>__<argument>` (`__lambda__v`, `__lambda__i__x_to_h`,
  `__eps__x_to_h__v`). The family word after the leading `__` tells the families apart.

Because user names contain no `__` and do not begin or end with `_`, joining them with `__` (coupled
names here, `mangle()` in the backends) is injective, and `split_coupled` undoes it.
Names that discretisation or `simplify` invent for a model's own temps and derived params (`P_v_v`,
`_cse0`) are chosen fresh against that model's declarations and are not part of this namespace.
"""

from __future__ import annotations

import re

SEP = "__"
_RUN = re.compile(r"_{2,}")


def user_name_problem(name: str) -> str | None:
    """Why `name` cannot be a user identifier (it lies in the generated namespace), or None."""
    if SEP in name:
        return "names with a double underscore are reserved for names the compiler generates"
    if name.startswith("_") or name.endswith("_"):
        return "names that begin or end with '_' are reserved for names the compiler generates"
    return None


def suggest_user_name(name: str) -> str:
    """`x__y` -> `x_y`, `_x_` -> `x`: a nearby name outside the reserved namespace."""
    return _RUN.sub("_", name).strip("_") or "x"


def _generated(family: str, *args: str) -> str:
    return SEP + SEP.join((family, *args))


def _argument(name: str, family: str) -> str:
    """The argument of a family member (`__lambda__v` -> `v`); raises on a name of another family."""
    head = _generated(family) + SEP
    if not name.startswith(head):
        raise ValueError(f"'{name}' is not a generated '{family}' name")
    return name[len(head) :]


def array(prefix: str, *parts: str) -> str:
    """An array's name: a fixed prefix, then `__`-joined IR names (`array("p", "h", "v") == "p_h__v"`).

    Injective: a prefix holds no `_`, and user names hold no `__` and do not begin or end with `_`,
    so the parts split back at their `__`; a part that is a coupled name (`i__x_to_h`) or a model
    temp (`_cse0`) is only ever the last one. The kernel's arrays and the C backend's are named so.
    """
    return prefix + "_" + SEP.join(parts)


def local(prefix: str, name: str) -> str:
    """A backend's name for IR name `name` under its own `prefix`: `ev_v`, `ev_i__x_to_h`, `ev__t_s`.

    A generated name's leading `__` stands in for the `_` separator, so a user or coupled name never
    meets a generated one (`ev_t_s` is a user state `t_s`, `ev__t_s` the spike time). A model temp
    (`_cse0`) gives `ev__cse0`, which no generated name here spells.
    """
    return prefix + name if name.startswith(SEP) else f"{prefix}_{name}"


# --------------------------------------------------------------------------------------------------
# Coupled names: a synapse's params and states inside the post population's equations
# --------------------------------------------------------------------------------------------------


def coupled(name: str, projection: str) -> str:
    """The synapse param or state `name` of incoming projection `projection`: `i__x_to_h`."""
    return f"{name}{SEP}{projection}"


def is_coupled(name: str) -> bool:
    """Whether `name` is a synapse's param or state seen from the post population (`i__x_to_h`)."""
    return SEP in name and not name.startswith(SEP)


def split_coupled(name: str) -> tuple[str, str | None]:
    """`i__x_to_h` -> (`i`, `x_to_h`); a neuron's own name -> (name, None)."""
    if name.startswith(SEP):
        raise ValueError(f"'{name}' is a generated name, not a coupled one")
    base, sep, projection = name.rpartition(SEP)
    return (base, projection) if sep else (name, None)


# --------------------------------------------------------------------------------------------------
# EventProp (ir/training.py)
# --------------------------------------------------------------------------------------------------

D = _generated("D")  # Σ_m w_nm g_m over the spiking neuron's outgoing connections
DLP_DTS = _generated("dlp_dts")  # ∂l_p/∂t_s of this spike
DL_DY = _generated("dL_dy")  # the trainer's loss gradient for this neuron and example
#: the readout's per-step drive of the first sample an arrival at this instant reaches (step k+1):
#: ∂l/∂x·dt there, for a jump of the read variable itself (an impulse synapse into an output)
DRIVE_AFTER = _generated("drive_after")
STEP = _generated("k")  # the step index k
STEPS = _generated("K")  # the number of steps K
DURATION = _generated("T")  # the duration T
SPIKE_COUNT_SUM = _generated("spike_count_sum")  # a neuron's spikes summed over the batch
BATCH_SIZE = _generated("batch_size")
IS_FIRST_SPIKE = _generated("is_first_spike")  # 1 at a neuron's first spike, else 0
SPIKE_TIME = _generated("t_s")  # the record of a spike's time
ARGMAX_TIME = _generated("t_max")  # the step max_var reads (shown in the continuous drive)
MAX_VALUE = _generated("y_max")  # the max_var readout's value: its variable at the maximum
#: dL/dy of a max_var readout whose maximum is a sample on either side of an arrival at (k+1)·dt
#: (sample k or k + 1), else 0
MAX_AT_ARRIVAL = _generated("dly_max")
CROSSING_RATE = _generated("crossing_rate")  # placeholder for the guarded ∇θ·f⁻
#: a spike's crossing rate as the executed jump divides by it: ∇θ·f⁻ on the threshold, with the
#: inputs the step's update read (the synapse states before their own decay), recorded at the spike
CROSSING_RATE_RECORD = _generated("crossing_rate_rec")
JUMP_SIZE = _generated("h")  # the size of a spike's jump while testing linearity along it


def adjoint(state: str) -> str:
    """The adjoint λ of a (coupled) state: `__lambda__v`, `__lambda__i__x_to_h`."""
    return _generated("lambda", state)


def adjoint_state(name: str) -> str:
    """`__lambda__i__x_to_h` -> `i__x_to_h`."""
    return _argument(name, "lambda")


def decay(what: str) -> str:
    """A hoisted backward decay factor `exp(-dt/what)`: `__decay__tau_mem` (`what` may be a number)."""
    return _generated("decay", what)


# --------------------------------------------------------------------------------------------------
# e-prop (ir/eprop_ir.py)
# --------------------------------------------------------------------------------------------------

Z = _generated("z")  # the post neuron's own spike this step
Z_PRE = _generated("z_pre")  # the presynaptic spike delivered this step
PSI = _generated("psi")  # the pseudo-derivative
REFRACTORY = _generated("refractory")  # 1 while the neuron is refractory in this step
ERROR = _generated("E")  # an output neuron's error
LEARNING_SIGNAL = _generated("L")  # a hidden neuron's learning signal
F_AVG = _generated("f_avg")  # a hidden neuron's filtered firing rate
Y_TRUE = _generated("y_true")  # an output neuron's target this step


def eligibility(projection: str, state: str) -> str:
    """ε of (coupled) `state` with respect to the weights of `projection`: `__eps__x_to_h__v`."""
    return _generated("eps", projection, state)


def bias_eligibility(state: str) -> str:
    """ε of an output neuron's `state` with respect to its own bias: `__eps_bias__v`."""
    return _generated("eps_bias", state)


def param_eligibility(param: str, state: str) -> str:
    """ε of a hidden or output neuron's `state` with respect to its trained param: `__eps_param__tau_mem__v`;
    a synapse's param and state appear by their coupled names (`__eps_param__tau__x_to_h__i__x_to_h`)."""
    return _generated("eps_param", param, state)


def param_trace(param: str) -> str:
    """e-prop's trace of a trained neuron param: `__e_param__tau_mem` (filtered: `__ebar_param__...`)."""
    return _generated("e_param", param)


def filtered_param_trace(param: str) -> str:
    return _generated("ebar_param", param)


def param_gradient(param: str, population: str) -> str:
    """The accumulator of dL/d`param` of `population`, as the IR printout names it: `__dparam__h__tau_mem`."""
    return _generated("dparam", population, param)


def feedback(projection: str) -> str:
    """`Σ_k B_jk E_k` over the output neurons of hidden -> output `projection`: `__fb__h_to_out`."""
    return _generated("fb", projection)


def feedback_weights(projection: str) -> str:
    """Symmetric feedback: the current weights of `projection` (transposed)."""
    return _generated("W", projection)


def feedback_matrix(projection: str) -> str:
    """Random feedback: the fixed matrix of `projection`."""
    return _generated("B", projection)


def trace(projection: str) -> str:
    return _generated("e", projection)


def filtered_trace(projection: str) -> str:
    return _generated("ebar", projection)


def param_key(param: str, owner: str) -> str:
    """The key a per-neuron or trained param is filed under beside the weights (checkpoints,
    `set_weights`, the optimiser, NIR export): `bias` of population `out` is `bias_out`, `tau` of
    projection `x_to_h` is `tau_x_to_h`."""
    return f"{param}_{owner}"


def weight_gradient(projection: str) -> str:
    return _generated("dW", projection)


def bias_gradient(population: str) -> str:
    return _generated("dbias", population)


def output_error(population: str) -> str:
    """The errors of an output population, as the learning signal reads them (shown in the IR)."""
    return _generated("E", population)


def reduction(kind: str, var: str) -> str:
    """A reduction over an output population's neurons: `__max__v`, `__sumexp__v`."""
    return _generated(kind, var)


__all__ = [
    "SEP",
    "adjoint",
    "adjoint_state",
    "bias_eligibility",
    "bias_gradient",
    "coupled",
    "decay",
    "eligibility",
    "feedback",
    "feedback_matrix",
    "feedback_weights",
    "filtered_param_trace",
    "filtered_trace",
    "is_coupled",
    "local",
    "output_error",
    "param_eligibility",
    "param_gradient",
    "param_trace",
    "reduction",
    "split_coupled",
    "suggest_user_name",
    "trace",
    "user_name_problem",
    "weight_gradient",
]
