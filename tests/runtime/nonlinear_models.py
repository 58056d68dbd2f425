"""Two non-linear neuron models whose EventProp gradients take the Euler backward step on the
recorded trajectory: checked against finite differences on C (test_gradients.py) and against C
on GeNN (tests/backends/test_genn_euler.py)."""

QUADRATIC = """
neuron QuadLIF {
    param tau_m = 10 ms
    param c = 0.3
    param v_th = 1.0
    state v = 0.0
    input i_syn
    dv/dt = (c * v * v - v + i_syn) / tau_m
    spike when v >= v_th
    reset { v = 0 }
}
"""
CONDUCTANCE = """
neuron CondLIF {
    param tau_m = 10 ms
    param g_leak = 1.0
    param e_rev = 3.0
    param v_th = 1.0
    state v = 0.0
    input i_syn
    dv/dt = (-g_leak * v + i_syn * (e_rev - v)) / tau_m
    spike when v >= v_th
    reset { v = 0 }
}
"""
