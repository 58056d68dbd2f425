"""The catalogue of semantic diagnostic codes, one place that says what each code means.

Codes are stable identifiers that tests and users can rely on (`snnc check` prints them); the wording
of messages may improve, the codes stay. The idea follows nestml's `MessageCode` catalogue.
"""

from __future__ import annotations

UNDEFINED = "E-UNDEFINED"  # a name (model, population, param, state, function, network) that does not exist
UNDEFINED_UNIT = "E-UNIT"  # a unit that snnc does not know
DUPLICATE = "E-DUPLICATE"  # the same name defined twice in one scope
DIM = "E-DIM"  # dimensions of an expression do not fit
TYPE = "E-TYPE"  # a value of the wrong kind (a comparison where a number is needed, a string ...)
UNKNOWN_PARAM = "E-UNKNOWN-PARAM"  # an override or keyword naming nothing the callee has
ARGCOUNT = "E-ARGCOUNT"  # wrong number of arguments
STATE_INIT = "E-STATE-INIT"  # a state without an initial value
ODE_UNDECLARED = "E-ODE-STATE"  # an ODE for something that is not a declared state
RESERVED = "E-RESERVED"  # `t`, `dt`, `w` declared by the user
RESERVED_NAME = "E-RESERVED-NAME"  # a name with `__` or a leading/trailing `_` (kept for generated names)
SHADOW = "E-SHADOW"  # a declaration that hides a language function such as `exp`
MODEL_STMT = "E-MODEL-STMT"  # a statement that does not belong in this kind of model
SYNAPSE = "E-SYNAPSE"  # a synapse model that cannot work (no output, on_pre not additive in w ...)
MODEL_KIND = "E-MODEL-KIND"  # a synapse used as a population or a neuron used as a synapse
SHAPE = "E-SHAPE"  # bad population shape or sizes that do not fit the connectivity
VALUE = "E-VALUE"  # a number outside its allowed range
ROLE = "E-ROLE"  # population role and model do not fit (input without generator ...)
CONN_INPUT = "E-CONN-INPUT"  # a connection into an input population
TARGET = "E-TARGET"  # a connection whose target input is missing or ambiguous
READOUT = "E-READOUT"  # bad readout, readout on a non-output population, output without readout
ALGO = "E-ALGO"  # algorithm, loss and readout that do not fit together
CYCLE = "E-CYCLE"  # a recurrent path the training algorithm cannot handle
FILE = "E-FILE"  # a file named in the source that is missing or of the wrong kind
WEIGHT_FILE = "E-WEIGHT-FILE"  # a weight file that is unreadable, not numeric, or of the wrong size
NETWORK = "E-NETWORK"  # which network to build is unclear (several, or a train block without one)

W_UNKNOWN_SETTING = "W-SETTING"  # a train-block key snnc does not know (kept in TrainSpec.options)
W_UNUSED_WEIGHT = "W-NO-ONPRE"  # a synapse whose on_pre never uses the weight

CATALOGUE: dict[str, str] = {
    UNDEFINED: "a name that is not defined where it is used",
    UNDEFINED_UNIT: "a unit that snnc does not know",
    DUPLICATE: "a name defined twice in the same scope",
    DIM: "physical dimensions that do not fit",
    TYPE: "a value of the wrong kind",
    UNKNOWN_PARAM: "an override or keyword that names nothing the callee has",
    ARGCOUNT: "the wrong number of arguments",
    STATE_INIT: "a state declared without an initial value",
    ODE_UNDECLARED: "an ODE for a name that is not a declared state",
    RESERVED: "a declaration of a reserved name (t, dt, w)",
    RESERVED_NAME: "a name in the namespace kept for generated names (`__`, leading or trailing `_`)",
    SHADOW: "a declaration that hides a language function",
    MODEL_STMT: "a statement that does not belong in this kind of model",
    SYNAPSE: "a synapse model that cannot work",
    MODEL_KIND: "a neuron model where a synapse is needed or the other way round",
    SHAPE: "a population shape, or sizes that do not fit the connectivity",
    VALUE: "a number outside its allowed range",
    ROLE: "a population role that does not fit its model",
    CONN_INPUT: "a connection into an input population",
    TARGET: "a connection target input that is missing or ambiguous",
    READOUT: "a bad, misplaced or missing readout",
    ALGO: "algorithm, loss and readout that do not fit together",
    CYCLE: "a recurrent path the training algorithm cannot handle",
    FILE: "a referenced file that is missing or of the wrong kind",
    WEIGHT_FILE: "a weight file that cannot be read, is not numeric, or holds the wrong number of weights",
    NETWORK: "unclear which network to build",
    W_UNKNOWN_SETTING: "a training-block key snnc does not know",
    W_UNUSED_WEIGHT: "a synapse whose on_pre never uses the weight w",
}
