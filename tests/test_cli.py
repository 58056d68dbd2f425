"""The `snnc` command as a user runs it: exit codes, messages, never a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.snn"))


def snnc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=120
    )


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_version() -> None:
    result = snnc("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("snnc ")


def test_help_lists_commands_and_examples() -> None:
    result = snnc("--help")
    assert result.returncode == 0
    for word in ("check", "compile", "train", "evaluate", "examples:"):
        assert word in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert snnc().returncode == 2


def test_unknown_option_is_a_usage_error() -> None:
    result = snnc("compile", "x.snn", "--emit", "llvm")
    assert result.returncode == 2
    assert_no_traceback(result)


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"yinyang_eventprop.snn", "shd_eventprop.snn", "eprop_digits.snn", "eprop_pattern.snn"} <= names


def test_check_examples_clean() -> None:
    result = snnc("check", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)


def test_check_reports_location_caret_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.snn"
    bad.write_text("use std.LIF\nnetwork n {\n    hidden h = LIFF(10)\n}\n")
    result = snnc("check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3:" in result.stderr
    assert "^" in result.stderr
    assert "LIF" in result.stderr  # the did-you-mean hint
    assert_no_traceback(result)


def test_check_missing_file(tmp_path: Path) -> None:
    result = snnc("check", str(tmp_path / "nope.snn"))
    assert result.returncode == 1
    assert "nope.snn" in result.stderr
    assert_no_traceback(result)


@pytest.mark.parametrize("emit", ["ast", "ir"])
def test_compile_emit(emit: str) -> None:
    result = snnc("compile", str(ROOT / "examples" / "yinyang_eventprop.snn"), "--emit", emit)
    assert result.returncode == 0, result.stderr
    assert "yinyang" in result.stdout or "h" in result.stdout


#: the Yin-Yang example's IR after every pass (a long printout)
PRINT_ALL = (
    "compile",
    str(ROOT / "examples" / "yinyang_eventprop.snn"),
    "--emit",
    "ir",
    "--print-after",
    "all",
)


def test_the_program_ends_with_all_of_its_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`snnc compile` run as the program ends without Python's teardown (`cli._end_now`): what it
    printed to a pipe (block-buffered, 40 kB here) still arrives whole, as `main([...])` prints it."""
    from snnc.cli import main

    args = list(PRINT_ALL)
    assert main(args) == 0
    expected = capsys.readouterr().out
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user runs it
    result = subprocess.run(
        [sys.executable, "-m", "snnc", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert len(expected) > 4 * io.DEFAULT_BUFFER_SIZE and result.stdout == expected


def test_print_after_all_and_timings() -> None:
    result = snnc(*PRINT_ALL, "--timings")
    assert result.returncode == 0, result.stderr
    assert "IR Dump After discretise" in result.stdout
    assert "discretise" in result.stderr and "total" in result.stderr


def test_print_after_unknown_pass_is_clear() -> None:
    result = snnc("compile", str(ROOT / "examples" / "yinyang_eventprop.snn"), "--print-after", "nosuchpass")
    assert result.returncode in (1, 2)
    assert "nosuchpass" in result.stderr
    assert_no_traceback(result)


def test_compile_builds_then_hits_the_cache(tmp_path: Path) -> None:
    import os

    env = dict(os.environ, SNNC_CACHE_DIR=str(tmp_path / "cache"))
    cmd = [
        sys.executable,
        "-m",
        "snnc",
        "compile",
        str(ROOT / "examples" / "shd_eventprop.snn"),
        "--inference",
    ]
    first = subprocess.run([*cmd, "--timings"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "backend c (compiled)" in first.stderr
    second = subprocess.run([*cmd, "--timings"], capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "backend c (cached)" in second.stderr
    assert "frontend" in second.stderr and "total" in second.stderr


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("binary.snn", bytes(range(256)) * 8, "E-ENCODING"),
        ("nested.snn", b"network n {\n input x = SpikeInput(" + b"(" * 10000 + b"\n}\n", "E-NESTING"),
        ("garbage.snn", b"}}}} -> ->\n@@@ ### ;;; \n", "error"),
        ("huge.snn", b"# comment line\n" * 700_000, "E-TOO-LARGE"),
    ],
    ids=["binary", "nested", "garbage", "huge"],
)
def test_hostile_files_get_a_clear_error_quickly(
    tmp_path: Path, name: str, content: bytes, code: str
) -> None:
    import time

    path = tmp_path / name
    path.write_bytes(content)
    start = time.perf_counter()
    result = snnc("check", str(path))
    assert time.perf_counter() - start < 10  # includes interpreter start-up; the parse bound is 2 s
    assert result.returncode == 1
    assert str(path) in result.stderr
    assert_no_traceback(result)
    assert "internal error" not in result.stderr


def test_empty_file_checks_clean(tmp_path: Path) -> None:
    path = tmp_path / "empty.snn"
    path.write_bytes(b"")
    result = snnc("check", str(path))
    assert result.returncode == 0
    assert_no_traceback(result)


def test_genn_backend_without_pygenn_is_one_clear_sentence(tmp_path: Path) -> None:
    try:
        import pygenn  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pygenn is installed here; this test is about machines without it")
    example = str(ROOT / "examples" / "yinyang_eventprop.snn")
    result = snnc("train", example, "--backend", "genn", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert "the genn backend needs pygenn" in result.stderr
    assert_no_traceback(result)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_emit_kernel_prints_the_forward_kernel_the_c_backend_prints(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "yinyang_eventprop.snn")
    result = snnc("compile", example, "--inference", "--emit", "kernel", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "kernel.txt").read_text()
    assert text.startswith("kernel yinyang")
    assert (
        "entry run: before [reset], forward steps [deliver_x_to_h, deliver_h_to_out, generate_x, step_h, step_out]"
        in text
    )
    trained = snnc("compile", example, "--emit", "kernel", "-o", str(tmp_path / "trained"))
    assert trained.returncode == 0, trained.stderr
    text = (tmp_path / "trained" / "kernel.txt").read_text()
    assert "spike_list_h" in text.split("entry run:")[1].splitlines()[0]  # the forward keeps spike lists
    assert (
        "entry backward: before [reset_backward], backward steps [events_x_to_h, events_h_to_out, "
        "jump_h, adjoint_h, adjoint_out]" in text
    )


def test_emit_kernel_of_eprop_prints_the_learning_entry(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "eprop_pattern.snn")
    result = snnc("compile", example, "--emit", "kernel", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "kernel.txt").read_text()
    assert "entry run: before [reset], forward steps [deliver_x_to_h" in text
    assert "entry eprop_run: before [reset, reset__eprop], forward steps [zpre__x_to_h" in text
    assert "array eg_h_to_h: gradient of h_to_h, scalar[batch, 256, 256]" in text


def test_a_cache_folder_that_cannot_exist_is_a_user_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "snnc", "compile", str(ROOT / "examples" / "yinyang_eventprop.snn")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "SNNC_CACHE_DIR": str(blocker / "cache")},
    )
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    assert f"cannot write compiled models into {blocker / 'cache'}" in result.stderr
    assert "SNNC_CACHE_DIR" in result.stderr


def test_emit_without_o_says_where_it_wrote(tmp_path: Path) -> None:
    result = snnc("compile", str(ROOT / "examples" / "yinyang_eventprop.snn"), "--emit", "c", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote snnc-out/yinyang.c" in result.stdout and "wrote snnc-out/manifest.json" in result.stdout
    assert f"no -o given, so the c code went to {tmp_path.resolve() / 'snnc-out'}" in result.stderr
    assert (tmp_path / "snnc-out" / "yinyang.c").is_file()


def test_o_without_emit_or_print_after_is_refused(tmp_path: Path) -> None:
    result = snnc("compile", str(ROOT / "examples" / "yinyang_eventprop.snn"), "-o", "x.txt", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "-o names where --emit or --print-after output goes" in result.stderr
    assert "add --emit c" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_o_takes_the_print_after_dumps(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "yinyang_eventprop.snn")
    into_file = snnc(
        "compile", example, "--inference", "--print-after", "discretise", "-o", "dumps.txt", cwd=tmp_path
    )
    assert into_file.returncode == 0, into_file.stderr
    assert "IR Dump" not in into_file.stdout and "wrote dumps.txt" in into_file.stdout
    assert (tmp_path / "dumps.txt").read_text().startswith("// ----- IR Dump After discretise -----")
    with_ir = snnc(
        "compile",
        example,
        "--inference",
        "--print-after",
        "discretise",
        "--emit",
        "ir",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert with_ir.returncode == 0, with_ir.stderr
    assert "IR Dump" not in with_ir.stdout
    assert "wrote out/print-after.txt" in with_ir.stdout and "wrote out/ir.txt" in with_ir.stdout
    assert (tmp_path / "out" / "print-after.txt").read_text().startswith("// ----- IR Dump After discretise")
    assert (tmp_path / "out" / "ir.txt").read_text().startswith("network yinyang")
    one_file = snnc(
        "compile",
        example,
        "--inference",
        "--print-after",
        "discretise",
        "--emit",
        "ir",
        "-o",
        "all.txt",
        cwd=tmp_path,
    )
    assert one_file.returncode == 0, one_file.stderr
    text = (tmp_path / "all.txt").read_text()  # what stdout would show without -o, in that order
    assert (
        text.startswith("// ----- IR Dump After discretise")
        and "\nnetwork yinyang  // stage: optimised" in text
    )


@pytest.mark.parametrize("emit, target", [("ir", "blk/ir.txt"), ("c", "blk/out"), ("genn", "blk/out")])
def test_an_output_below_a_file_is_a_user_error(tmp_path: Path, emit: str, target: str) -> None:
    (tmp_path / "blk").write_text("")
    example = str(ROOT / "examples" / "yinyang_eventprop.snn")
    result = snnc("compile", example, "--inference", "--emit", emit, "-o", target, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    assert (
        "cannot write the " in result.stderr
        and f"'{target}': '{tmp_path / 'blk'}' is a file, not a folder" in result.stderr
    )


def test_print_after_schedule_dumps_the_kernel_after_the_passes(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "yinyang_eventprop.snn")
    result = snnc(
        "compile",
        example,
        "--print-after",
        "simplify",
        "--print-after",
        "schedule",
        "-o",
        str(tmp_path / "d.txt"),
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "d.txt").read_text()
    after_simplify = text.index("// ----- IR Dump After simplify -----")
    after_schedule = text.index("// ----- Kernel IR Dump After schedule -----")
    assert after_simplify < after_schedule
    assert "entry backward: before [reset_backward]" in text[after_schedule:]
