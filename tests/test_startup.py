"""A training's start-up runs with the collector paused, once per process, and always turns it back on."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from pipeline.stages import startup


@pytest.fixture
def fresh(monkeypatch):
    """A process that has not started a training yet; the collector as it was afterwards."""
    monkeypatch.setattr(startup, "_started", False)
    enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_the_first_start_up_pauses_the_collector_then_freezes_what_it_made(fresh):
    with startup.imports_without_gc():
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # objects the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)


def test_a_later_start_up_in_the_same_process_changes_nothing(fresh):
    with startup.imports_without_gc():
        pass
    frozen = gc.get_freeze_count()
    leftover = [[] for _ in range(1000)]  # what an earlier sweep job left behind
    with startup.imports_without_gc():
        assert gc.isenabled()
    # Not frozen again: the count would grow by the leftovers. It may shrink, since a frozen
    # object that other threads of the test process drop is freed by its reference count.
    assert gc.get_freeze_count() <= frozen
    del leftover


def test_a_failing_start_up_still_turns_the_collector_back_on(fresh):
    with pytest.raises(RuntimeError, match="store"), startup.imports_without_gc():
        raise RuntimeError("the store is damaged")
    assert gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off(fresh):
    gc.disable()
    with startup.imports_without_gc():
        pass
    assert not gc.isenabled()


def test_frozen_objects_are_freed_at_exit():
    """Extension modules that count their objects at exit (nanobind's, in triton) see none left."""
    code = (
        "import gc, weakref\n"
        "from pipeline.stages import startup\n"
        "import atexit\n"
        "class Cycle: pass\n"
        "probe = None\n"
        "# Registered first, so it runs last, after start-up's own exit handler:\n"
        "atexit.register(lambda: print('freed' if gc.collect() and probe() is None else 'kept'))\n"
        "with startup.imports_without_gc():\n"
        "    a = Cycle(); a.self = a; probe = weakref.ref(a); del a\n"
        "gc.collect()\n"
        "assert probe() is not None  # frozen: the collector skips the cycle\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freed"
