"""The parser tables are cached on disk (frontend/parser.py `_lark`): a missing, corrupt or
unwritable cache must never change what parses, nor raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.frontend import parser

SOURCE = (Path(__file__).parent / "valid" / "add_dimension.snn").read_text()


@pytest.fixture
def fresh_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    parser._lark.cache_clear()
    yield tmp_path
    parser._lark.cache_clear()


def _parse_fresh(text: str):
    parser._lark.cache_clear()
    return parser.parse(text)


def test_tables_are_written_once_and_reused(fresh_parser: Path) -> None:
    want = _parse_fresh(SOURCE)
    files = list((fresh_parser / "parser").iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 1000
    stamp = files[0].stat().st_mtime_ns
    assert _parse_fresh(SOURCE) == want
    assert files[0].stat().st_mtime_ns == stamp, "a good cache file is read, not rewritten"


def test_corrupt_cache_is_rebuilt_silently(fresh_parser: Path, capsys: pytest.CaptureFixture) -> None:
    want = _parse_fresh(SOURCE)
    (cache,) = (fresh_parser / "parser").iterdir()
    cache.write_bytes(cache.read_bytes()[:200] + b"\x00garbage")
    assert _parse_fresh(SOURCE) == want
    assert capsys.readouterr().err == ""
    assert cache.stat().st_size > 1000, "the broken file is replaced by good tables"


def test_unwritable_cache_location_still_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SNNC_CACHE_DIR", str(blocker))
    try:
        assert _parse_fresh(SOURCE).items
    finally:
        parser._lark.cache_clear()
