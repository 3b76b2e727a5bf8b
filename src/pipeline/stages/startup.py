"""Process start-up: the garbage collector sits out the imports.

A training command imports about 5,000 modules (torch, Lightning, MLflow, Hydra): some 700,000
objects that live as long as the process. While they load, the collector's full pass runs again and
again over all of them (9 times, about 1.8 s of a 1-epoch command on a 2-core CPU). Paused while
they load, then frozen (moved where the collector never looks; they are still freed when nothing
refers to them), they cost it nothing. Objects made afterwards are collected as usual.

Once per process: a later training in the same process (the next job of an in-process sweep)
runs with the collector as usual, so nothing an earlier job left behind is ever frozen.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator

_started = False


@contextlib.contextmanager
def imports_without_gc() -> Iterator[None]:
    """The first time in a process: pause the collector for the block, then freeze what exists."""
    global _started
    if _started:
        yield
        return
    _started = True
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        # Back in view at exit, so that the interpreter's last collections free them as before
        # (extension modules that count their objects at exit would otherwise report leaks).
        atexit.register(gc.unfreeze)
        if enabled:
            gc.enable()
