"""The test suite as a developer waits for it, as whole pytest processes (one run each: minutes).

default   the fast tier, `pytest -m "not slow"`                      target <= 120 s
--full    also the whole suite as CI runs it (coverage on)           target <= 600 s
--quick   skipped: the tests run `python -m benchmarks --quick` themselves
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from benchmarks.common import PROJECT, clean_env, row, skipped

FAST_LIMIT_S = 120
FULL_LIMIT_S = 600


def _pytest(*args: str) -> tuple[float, str]:
    """Wall seconds of one pytest process in the project, and its summary ("398 passed, ...")."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=PROJECT,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    found = re.findall(r"^=* ?(\d+ passed.*?) in [\d.]+s", done.stdout, flags=re.MULTILINE)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"pytest {' '.join(args)} exited {done.returncode}: {done.stdout[-1500:]}")
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
