"""Ctrl-C held back until a write to the tracking store has finished.

A KeyboardInterrupt raised inside SQLite's transaction (after a statement, before the commit)
loses the write, and can leave the database locked for the rest of the process: the run could
not even be closed as KILLED and would stay RUNNING. A store write takes milliseconds, so the first Ctrl-C waits for
it; a second one interrupts at once, as a user who means it expects.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def ctrl_c_after_write() -> Iterator[None]:
    """Run the block without Ctrl-C cutting it; deliver a Ctrl-C that came meanwhile after it.

    Also a decorator. Nested blocks hold it once; outside the main thread (where no signal
    handler runs) or under a handler not set from Python it changes nothing.
    """
    previous = signal.getsignal(signal.SIGINT)
    if (
        threading.current_thread() is not threading.main_thread()
        or previous is None
        or getattr(previous, "holds_ctrl_c", False)
    ):
        yield
        return
    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)
        if len(pending) > 1:  # a second Ctrl-C: stop now
            signal.signal(signal.SIGINT, previous)
            signal.raise_signal(signum)

    hold.holds_ctrl_c = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is hold:
            signal.signal(signal.SIGINT, previous)
        if len(pending) == 1:
            signal.raise_signal(signal.SIGINT)  # to the handler that was there before
