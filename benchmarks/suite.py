"""The test suite as a developer waits for it, as whole pytest processes (one run each: minutes).

default   the fast tier, `pytest -m "not slow"`                      target <= 120 s
--full    also the whole suite as CI runs it (coverage on)           target <= 600 s
--quick   skipped: the tests run `python -m benchmarks --quick` themselves
"""

from __future__ import annotations

import re
import sys

from benchmarks.common import PROJECT, row, skipped, timed_process

FAST_LIMIT_S = 120
FULL_LIMIT_S = 600


def _pytest(*args: str) -> tuple[float, str]:
    """Wall seconds of one pytest process in the project, and its summary ("398 passed, ...")."""
    seconds, out = timed_process([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], PROJECT)
    found = re.findall(r"^=* ?(\d+ passed.*?) in [\d.]+s", out, flags=re.MULTILINE)
    if not found:
        raise RuntimeError(f"pytest {' '.join(args)} printed no summary: {out[-1500:]}")
    return seconds, found[-1]


def run(quick: bool = False, full: bool = False, **_) -> list[dict]:
    if quick:
        return [skipped("tests", 'fast tier, pytest -m "not slow"', "not in --quick (the tests run --quick)")]
    seconds, summary = _pytest("-m", "not slow")
    rows = [
        row(
            "tests",
            f'fast tier, pytest -m "not slow" ({summary})',
            seconds,
            unit="s",
            target=("<=", FAST_LIMIT_S, "ours"),
        )
    ]
    if full:
        seconds, summary = _pytest("--cov", "--cov-report=")
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
