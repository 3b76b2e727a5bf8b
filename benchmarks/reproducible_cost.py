"""What the reproducible mode costs: the 1-epoch training command with `reproducible=true` (ours) against
the same command with `reproducible=false` (baseline), whole processes, interleaved.

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
from benchmarks.common import interleaved, median, row, timed_process

CASES = {  # name -> (overrides, --quick overrides)
    "MLP": ([], ["data.train_subset=5000"]),
    "CNN": (["model=cnn", "data.train_subset=12800"], ["model=cnn", "data.train_subset=1000"]),
}


def _one_epoch(tmp: Path, name: str, reproducible: bool, overrides: list[str]) -> tuple[float, float]:
    """Wall seconds of the whole command, and the training seconds it reports."""
    cmd = _train_cmd(
        tmp,
        name,
        "trainer.max_epochs=1",
        "tracking.log_model=false",
        f"reproducible={str(reproducible).lower()}",
        *overrides,
    )
    seconds, log = timed_process(cmd, tmp)
    return seconds, float(re.findall(r"\[train\] done in ([0-9.]+)s", log)[-1])


def _case(tmp: Path, name: str, overrides: list[str], repeats: int) -> dict:
    runs = iter(range(10**6))
    train_s: dict[str, list[float]] = {"on": [], "off": []}

    def side(mode: str) -> float:
        seconds, training = _one_epoch(tmp, f"{name}-{mode}{next(runs)}", mode == "on", overrides)
        train_s[mode].append(training)
        return seconds

    whole = interleaved({"on": lambda: side("on"), "off": lambda: side("off")}, repeats)
    on, off = median(train_s["on"]), median(train_s["off"])
    return row(
        "repro",
        f"train, {name} 1 epoch, whole command: reproducible=true vs false",
        median(whole["on"]),
        median(whole["off"]),
        "s",
        note=f"training alone {on:.1f} s vs {off:.1f} s ({on / off:.2f}x)",
        samples=whole["on"],
        samples_baseline=whole["off"],
        train_s=train_s["on"],
        train_s_baseline=train_s["off"],
    )


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    repeats = 1 if quick else min(repeats, 3)
    with tempfile.TemporaryDirectory(prefix="bench-repro-") as tmp:
        return [_case(Path(tmp), name, small if quick else full, repeats) for name, (full, small) in CASES.items()]
