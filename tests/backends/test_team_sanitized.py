"""The C backend's team (backends/c/templates/team.c.j2) under ThreadSanitizer and AddressSanitizer:
a harness hands it thousands of batches with random team sizes, waits and batch sizes, lets the
helpers fall asleep and end in between, and checks every trial's result. A data race in handing out
or taking back a batch shows as a sanitizer report even when the results happen to be right."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HARNESS = r"""
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
typedef struct { double* out; const double* in; } snnc_arrays;
TEAM
static void trial(const snnc_arrays* A, int64_t b, int64_t batch, int64_t steps, uint64_t seed) {
    (void)batch; (void)seed;
    double acc = 0;
    for (int64_t k = 0; k < steps; k++) acc += A->in[k % 64] * (double)(b + 1);
    A->out[b] = acc;
}
int main(void) {
    double in[64], out[64];
    for (int i = 0; i < 64; i++) in[i] = i * 0.5;
    snnc_arrays A = {out, in};
    unsigned rng = 12345;
    for (int it = 0; it < 4000; it++) {
        rng = rng * 1103515245u + 12345u;
        snnc_team_state.threads = 1 + (rng >> 16) % 4;
        const unsigned wait = (rng >> 20) % 3;
        atomic_store(&snnc_team_state.spin_ns, wait == 0 ? 0 : wait == 1 ? 1000 : 200000);
        const int64_t batch = 1 + (rng >> 8) % 40, steps = 1 + (rng >> 4) % 300;
        memset(out, 0, sizeof out);
        snnc_for_trials(trial, &A, batch, steps, 0);
        for (int64_t b = 0; b < batch; b++) {
            double acc = 0;
            for (int64_t k = 0; k < steps; k++) acc += in[k % 64] * (double)(b + 1);
            if (out[b] != acc) { printf("wrong trial %ld of batch %d\n", (long)b, it); return 1; }
        }
        if (it == 2000) { struct timespec t = {1, 300000000}; nanosleep(&t, NULL); } /* helpers end */
    }
    puts("all batches right");
    return 0;
}
"""


def _team_source() -> str:
    from snnc.backends.c.kernel_printer import TEMPLATES
    from snnc.backends.templates import template_env

    return template_env(TEMPLATES).get_template("team.c.j2").render()


@pytest.mark.parametrize("sanitizer", ["thread", "address,undefined"])
def test_the_team_is_clean_under_sanitizers(sanitizer: str, tmp_path: Path) -> None:
    from snnc.backends.c.build import compiler

    src = tmp_path / "harness.c"
    src.write_text(HARNESS.replace("TEAM", _team_source()))
    exe = tmp_path / "harness"
    cc = compiler()
    built = subprocess.run(
        [*cc, "-std=c11", "-O1", "-g", f"-fsanitize={sanitizer}", "-pthread", str(src), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0 and "sanitize" in built.stderr:
        pytest.skip(f"the compiler has no -fsanitize={sanitizer}: {built.stderr.strip()[:200]}")
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    if "FATAL: ThreadSanitizer: unexpected memory mapping" in ran.stderr:
        pytest.skip("ThreadSanitizer cannot run with this kernel's address-space layout")
    assert ran.returncode == 0 and "all batches right" in ran.stdout, ran.stdout + ran.stderr[-3000:]
    assert "Sanitizer" not in ran.stderr, ran.stderr[-3000:]
