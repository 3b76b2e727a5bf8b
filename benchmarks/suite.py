"""The test suite as a developer waits for it, as whole pytest processes (one run each: minutes).

default   the fast tier, `pytest -m "not slow"`, beside the same in one process (-n 0)   target <= 120 s
--full    also the whole suite as CI runs it (coverage on)                                target <= 600 s
--quick   skipped: the tests run `python -m benchmarks --quick` themselves

The project's pytest options run the test files side by side, one worker per core (pyproject.toml);
the one-process run is the baseline that shows what that gives. The whole suite has no such baseline
here: in one process it takes most of an hour (docs/performance.md).
"""

from __future__ import annotations

import re
import sys

from benchmarks.common import PROJECT, row, skipped, timed_process

FAST_LIMIT_S = 120
FULL_LIMIT_S = 600
FAST_TIER = ("-m", "not slow")


def _pytest(*args: str, timeout: float = 1800) -> tuple[float, str]:
    """Wall seconds of one pytest process in the project, and its summary ("398 passed, ... on 2 workers")."""
    seconds, out = timed_process(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], PROJECT, timeout=timeout
    )
    found = re.findall(r"^=* ?(\d+ passed.*?) in [\d.]+s", out, flags=re.MULTILINE)
    if not found:
        raise RuntimeError(f"pytest {' '.join(args)} printed no summary: {out[-1500:]}")
    workers = re.search(r"^(\d+) workers \[", out, flags=re.MULTILINE)
    return seconds, found[-1] + (f" on {workers[1]} workers" if workers else " in one process")


def run(quick: bool = False, full: bool = False, **_) -> list[dict]:
    if quick:
        return [skipped("tests", 'fast tier, pytest -m "not slow"', "not in --quick (the tests run --quick)")]
    seconds, summary = _pytest(*FAST_TIER)
    one_process, _ = _pytest(*FAST_TIER, "-n", "0")
    rows = [
        row(
            "tests",
            f'fast tier, pytest -m "not slow" ({summary}; baseline: the same with -n 0)',
            seconds,
            one_process,
            unit="s",
            target=("<=", FAST_LIMIT_S, "ours"),
        )
    ]
    if full:
        seconds, summary = _pytest("--cov", "--cov-report=", timeout=5400)
        rows.append(
            row(
                "tests",
                f"whole suite as CI runs it ({summary})",
                seconds,
                unit="s",
                target=("<=", FULL_LIMIT_S, "ours"),
            )
        )
    else:
        rows.append(skipped("tests", f"whole suite as CI runs it (target <= {FULL_LIMIT_S} s)", "opt-in: --full"))
    return rows
