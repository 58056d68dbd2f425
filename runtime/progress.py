"""A per-epoch progress bar: tqdm when available, otherwise one self-rewriting line.

It is silent when the stream is not a terminal (logs, CI, pytest) or when `quiet` is set, so that
training output in files stays clean.
"""

from __future__ import annotations

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
