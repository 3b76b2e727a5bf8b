"""Ctrl-C (and a SIGTERM that raises) held back until a write to the tracking store has finished.

A KeyboardInterrupt raised inside SQLite's transaction (after a statement, before the commit)
loses the write, and can leave the database locked for the rest of the process: the run could
not even be closed as KILLED and would stay RUNNING. A store write takes milliseconds, so the first Ctrl-C waits for
it; a second one interrupts at once, as a user who means it expects. SIGTERM is held the same way
where a Python handler turns it into an exception (a Hydra job's `sigterm_raises`); under its
default action the process dies at once and nothing can be held.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

# Exit status of a process stopped by SIGTERM, as a shell reports it (128 + 15).
SIGTERM_EXIT = 143


def _held(signum: int) -> bool:
    handler = signal.getsignal(signum)
    return callable(handler) and not getattr(handler, "holds_ctrl_c", False)


@contextlib.contextmanager
def ctrl_c_after_write() -> Iterator[None]:
    """Run the block without Ctrl-C (or a raising SIGTERM) cutting it; deliver one that came meanwhile after it.

    Also a decorator. Nested blocks hold it once; outside the main thread (where no signal
    handler runs) or under a handler not set from Python it changes nothing.
    """
    main = threading.current_thread() is threading.main_thread()
    signums = [s for s in (signal.SIGINT, signal.SIGTERM) if _held(s)] if main else []
    if not signums:  # (SIGINT may be ignored, as in a background job, while SIGTERM raises)
        yield
        return
    previous = {s: signal.getsignal(s) for s in signums}
    pending: list[int] = []

    def hold(signum, frame):
        pending.append(signum)
        if len(pending) > 1:  # a second signal: stop now
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)

    hold.holds_ctrl_c = True  # type: ignore[attr-defined]
    for s in signums:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s in signums:
            if signal.getsignal(s) is hold:
                signal.signal(s, previous[s])
        if len(pending) == 1:
            signal.raise_signal(pending[0])  # to the handler that was there before


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) in the block (a scheduler's or `kill`'s stop), so the code
    that ends the run as KILLED runs, as it does for Ctrl-C. Lightning's own handler, set during
    fit, does the same and calls this one after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(SIGTERM_EXIT)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop:
            signal.signal(signal.SIGTERM, previous)
