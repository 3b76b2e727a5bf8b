"""What the reproducible mode costs: the 1-epoch training command with `reproducible=true` (ours) against
the same command with `reproducible=false` (baseline), whole processes, interleaved; and against
`reproducible=false` at one thread (OMP_NUM_THREADS=1), which leaves the kernels alone as the cost:
the mode runs one thread, and on a busy machine torch's default threads wait on each other.

    MLP   the seed MLP, 1 epoch over the 55k training split (--quick: 5,000 images)
    CNN   model=cnn, 1 epoch over a 12,800-image subset (--quick: 1,000): the convolutions the mode
          moves off oneDNN

Each command trains, evaluates and logs to MLflow as `python -m pipeline.stages.train` does; the rows
also carry the training seconds each run reports (`[train] done in Xs`), the part the mode slows.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from benchmarks.command import _train_cmd
from benchmarks.common import clean_env, interleaved, median, row, timed_process

CASES = {  # name -> (overrides, --quick overrides)
    "MLP": ([], ["data.train_subset=5000"]),
    "CNN": (["model=cnn", "data.train_subset=12800"], ["model=cnn", "data.train_subset=1000"]),
}


def _one_epoch(tmp: Path, name: str, reproducible: bool, overrides: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds of the whole command, and the training seconds it reports."""
    cmd = _train_cmd(
        tmp,
        name,
        "trainer.max_epochs=1",
        "tracking.log_model=false",
        f"reproducible={str(reproducible).lower()}",
        *overrides,
    )
    seconds, log = timed_process(cmd, tmp, env=env)
    return seconds, float(re.findall(r"\[train\] done in ([0-9.]+)s", log)[-1])


SIDES = {  # name -> (reproducible, extra environment)
    "on": (True, {}),
    "off": (False, {}),
    "off, 1 thread": (False, {"OMP_NUM_THREADS": "1"}),
}


def _case(tmp: Path, name: str, overrides: list[str], repeats: int) -> list[dict]:
    runs = iter(range(10**6))
    train_s: dict[str, list[float]] = {side: [] for side in SIDES}

    def timed(side: str) -> float:
        reproducible, env = SIDES[side]
        seconds, training = _one_epoch(tmp, f"{name}-{next(runs)}", reproducible, overrides, clean_env() | env)
        train_s[side].append(training)
        return seconds

    whole = interleaved({side: (lambda side=side: timed(side)) for side in SIDES}, repeats)
    rows = []
    for baseline, what in (("off", "false"), ("off, 1 thread", "false at 1 thread")):
        on, off = median(train_s["on"]), median(train_s[baseline])
        rows.append(
            row(
                "repro",
                f"train, {name} 1 epoch, whole command: reproducible=true vs {what}",
                median(whole["on"]),
                median(whole[baseline]),
                "s",
                note=f"training alone {on:.1f} s vs {off:.1f} s ({on / off:.2f}x)",
                samples=whole["on"],
                samples_baseline=whole[baseline],
                train_s=train_s["on"],
                train_s_baseline=train_s[baseline],
            )
        )
    return rows


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    repeats = 1 if quick else min(repeats, 3)
    with tempfile.TemporaryDirectory(prefix="bench-repro-") as tmp:
        rows = []
        for name, (full, small) in CASES.items():
            rows += _case(Path(tmp), name, small if quick else full, repeats)
        return rows
