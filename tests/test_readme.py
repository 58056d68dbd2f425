"""The README shows the code it talks about: its Yin-Yang block is examples/yinyang_eventprop.snn."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```$", text, flags=re.S | re.M)


def test_the_yinyang_block_is_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / "examples" / "yinyang_eventprop.snn").read_text(encoding="utf-8")
    blocks = [b for b in code_blocks(readme) if "network yinyang" in b]
    assert blocks == [example]


def test_the_readme_commands_name_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:examples|benchmarks|tests)/[\w/.-]+\.(?:snn|py))\b", readme))
    assert named and not [p for p in sorted(named) if not (ROOT / p).exists()]


def test_ci_runs_the_readme_test_command() -> None:
    """`.ci/run` says it runs exactly the README's test command; it must, or CI tests what users do not."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [b.strip() for b in code_blocks(readme) if "python -m pytest" in b]
    assert len(commands) == 1 and "interop" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[0] in [line.strip() for line in ci]
