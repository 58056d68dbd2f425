"""The Jinja environment every backend renders with (STYLE.md #10): strict about undefined names,
no autoescaping (the output is code), and block tags that leave no blank lines behind."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2


@functools.cache
def template_env(folder: Path) -> jinja2.Environment:
    """One environment per template folder, made once (templates are compiled on first use)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
