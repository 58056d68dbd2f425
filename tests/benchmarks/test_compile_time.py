"""benchmarks/compile_time.py's cold runs: the compile cache emptied, snnc's own tables kept (what any
earlier compile with this snnc leaves), so that "cold" means a model never compiled before."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import compile_time  # noqa: E402


def test_a_cold_run_finds_the_tables_but_no_compiled_model(tmp_path: Path) -> None:
    for folder in ("parser", "compiler", "templates", "compiled/ab", "e8/e857"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "entry").write_text("x")
    (tmp_path / "stray.tmp").write_text("x")
    compile_time.empty(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiler", "parser", "templates"]
    assert all((tmp_path / name / "entry").exists() for name in compile_time.KEPT)
