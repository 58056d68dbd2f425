"""The Jinja environment every backend renders with (STYLE.md #10): strict about undefined names,
no autoescaping (the output is code), and block tags that leave no blank lines behind."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
import jinja2.bccache

from snnc.cache import cache_dir


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
        bytecode_cache=_compiled_templates(),
    )


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache, where a file that cannot be read or written is only a miss."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _compiled_templates() -> jinja2.FileSystemBytecodeCache | None:
    """The templates compiled to Python code, kept in the user's snnc cache beside the parser's
    tables (`<cache>/templates`): compiling the C kernel's two templates took ~35 ms of every cold
    `snnc compile`. Jinja keys a file by the template's name and checks its source's hash, writes it
    atomically and compiles again from a file it cannot read; a folder that cannot be made or
    written only means compiling each time."""
    folder = cache_dir() / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _TemplateCache(str(folder))
