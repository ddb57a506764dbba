"""Keep Ctrl-C for the main thread.

The kernel hands a process-directed signal such as SIGINT to any thread that does not block
it. When a lab thread takes it, CPython only flags the signal, and a main thread blocked in a
lock or a join never wakes up to raise KeyboardInterrupt: `lab up` then ignores Ctrl-C. This
happened under load, when a busy lab thread was the one running. Threads inherit the signal
mask of the thread that starts them, so every thread the lab starts inside `main_thread_signals`
(and every thread those start) blocks the stop signals, and only the main thread receives them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def main_thread_signals() -> Iterator[None]:
    """Threads started inside this block never receive SIGINT or SIGTERM."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
