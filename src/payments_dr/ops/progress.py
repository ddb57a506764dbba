"""Waiting loops: their timing (injectable, so tests run instantly) and a progress line.

The progress line goes to stderr: redrawn in place on a terminal, logged otherwise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Timing:
    timeout_seconds: float
    poll_interval_seconds: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._last = ""

    def update(self, elapsed_seconds: float, text: str) -> None:
        if self._interactive:
            self._stream.write(f"\r\033[K[{elapsed_seconds:6.1f}s] {text}")
        elif text != self._last:  # in a log, only changes are worth a line
            self._stream.write(f"[{elapsed_seconds:6.1f}s] {text}\n")
        self._stream.flush()
        self._last = text

    def finish(self) -> None:
        if self._interactive and self._last:
            self._stream.write("\n")
            self._stream.flush()
        self._last = ""
