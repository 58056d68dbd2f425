"""Progress for people and for machines.

`BatchProgressBar` is a per-epoch progress bar: tqdm when available, otherwise one self-rewriting
line. It is silent when the stream is not a terminal (logs, CI, pytest) or when `quiet` is set, so
that training output in files stays clean. `JsonLinesLog` is `--log-json`: one JSON object per event.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from snnc.runtime.callbacks import Callback, LoopContext


def _format(metrics: Mapping[str, Any]) -> str:
    parts = []
    for k, v in metrics.items():
        value = getattr(v, "result", v)
        if isinstance(value, (int, float)):
            parts.append(f"{k}={value:.4g}")
    return " ".join(parts)


class _FallbackBar:
    def __init__(self, total: int, desc: str, stream: TextIO):
        self.total, self.desc, self.stream, self.n, self.post = total, desc, stream, 0, ""

    def update(self, k: int = 1) -> None:
        self.n += k
        self.stream.write(f"\r{self.desc} {self.n}/{self.total} {self.post}")
        self.stream.flush()

    def set_postfix_str(self, text: str) -> None:
        self.post = text

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class BatchProgressBar(Callback):
    """Shows batches done in the current epoch with the running loss and metrics."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, force: bool = False):
        self.quiet = quiet
        self.stream = stream
        self.force = force  # show even when the stream is not a terminal (tests)
        self.bar = None

    def set_params(self, context: LoopContext) -> None:
        super().set_params(context)
        stream = self.stream or sys.stderr
        self.enabled = not self.quiet and (self.force or (hasattr(stream, "isatty") and stream.isatty()))

    def _open(self, desc: str) -> None:
        if not self.enabled:
            return
        stream = self.stream or sys.stderr
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=self.context.num_batches, desc=desc, file=stream, leave=True)
        except ImportError:
            self.bar = _FallbackBar(self.context.num_batches, desc, stream)

    def on_epoch_begin(self, epoch: int) -> None:
        self._open(f"epoch {epoch}" if self.context.mode == "train" else "evaluate")

    def on_batch_end(self, batch: int, metrics: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(_format(metrics))
            self.bar.update(1)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _plain(value: Any) -> Any:
    """JSON-safe: numpy numbers become Python numbers, NaN/Inf become null (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


class JsonLinesLog:
    """`--log-json`: one JSON object per line (JSON Lines), flushed as soon as it is written.

    `target` is a file path, or "-" for stdout (the caller then sends its human-readable lines to
    stderr so that stdout stays parseable). A file is truncated, except with `append=True` (what
    `--resume` uses, so the log of an interrupted run continues in the same file). Every record has
    an "event" key; `write` adds the others as given.
    """

    def __init__(self, target: str, append: bool = False):
        self.target = target
        if target == "-":
            self.stream: TextIO = sys.stdout
            self._owned = False
        else:
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            self.stream = open(target, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True

    @property
    def to_stdout(self) -> bool:
        return not self._owned

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, **_plain(fields)}
        self.stream.write(json.dumps(record, allow_nan=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._owned:
            self.stream.close()

    def __enter__(self) -> JsonLinesLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullLog:
    """Stands in for `JsonLinesLog` when `--log-json` is not given."""

    to_stdout = False

    def write(self, event: str, **fields: Any) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> NullLog:
        return self

    def __exit__(self, *exc: object) -> None: ...


def open_log(target: str | None, append: bool = False) -> JsonLinesLog | NullLog:
    """The `--log-json` log for `target` (None: no log)."""
    return NullLog() if target is None else JsonLinesLog(target, append)
