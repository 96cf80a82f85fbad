"""Stopping a long job at a safe point: Ctrl-C deferred to an iteration's end, time budgets.

The CLI (never the library) installs :class:`DeferredInterrupt` around ``train``: the first
Ctrl-C only asks the job to stop at the next iteration boundary, where its state is saved;
a second one stops at once (as Ctrl-C normally does; the last checkpoint stays).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

INTERRUPTED = "interrupted"
TIME_BUDGET = "time budget"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a job stopped by Ctrl-C


class DeferredInterrupt:
    """While active (a ``with`` block in the main thread), SIGINT sets :attr:`requested`."""

    def __init__(self, on_request: Callable[[], None] | None = None) -> None:
        self.requested = False
        self._on_request = on_request
        self._previous: Any = None
        self._active = False

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._active = True
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._on_request is not None:
            self._on_request()


def stop_check(interrupt: DeferredInterrupt | None, max_minutes: float | None
               ) -> Callable[[], str | None]:
    """A ``should_stop`` for :func:`gameadapt.train.session.train`: Ctrl-C, then the time budget."""
    deadline = time.monotonic() + max_minutes * 60 if max_minutes is not None else None

    def should_stop() -> str | None:
        if interrupt is not None and interrupt.requested:
            return INTERRUPTED
        if deadline is not None and time.monotonic() >= deadline:
            return TIME_BUDGET
        return None

    return should_stop
