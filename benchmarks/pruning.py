"""Pruning in the Optuna sweeper: the `optuna_mlp` search with `hydra.sweeper.pruner.name=median` (its
defaults: pruned from epoch 2 on, once 2 trials finished) against the same search without pruning.

    default   the preset's 10 TPE trials of 8 epochs, on a 2,000-image training subset so that one
              search takes minutes, not a quarter of an hour, on 2 cores
    --quick   4 trials of 2 epochs on 1,000 images (pruning from epoch 1, after 1 finished trial)

Rows: the wall time of the whole sweep command (ours: median pruning; baseline: no pruning), and the
best validation accuracy each search found (the value the study maximises; the test set is not
looked at). Whole processes, interleaved, each in a fresh temp folder and MLflow store; the
pruned trials are counted from the sweeper's `[optuna] trial N pruned` lines.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.common import data_root, interleaved, median, row, timed_process

PY = sys.executable
FULL = ["data.train_subset=2000"]
QUICK = [
    "hydra.sweeper.n_trials=4",
    "trainer.max_epochs=2",
    "data.train_subset=1000",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.pruner.n_warmup_steps=1",
]


def search(tmp: Path, name: str, pruner: str, budget: list[str]) -> tuple[float, float, int]:
    """(wall seconds, best val accuracy, trials pruned) of one `experiment=optuna_mlp` search."""
    sweep = tmp / name
    seconds, out = timed_process(
        [
            PY,
            "-m",
            "pipeline.stages.train",
            "experiment=optuna_mlp",
            f"hydra.sweeper.pruner.name={pruner}",
            *budget,
            f"hydra.sweep.dir={sweep}",
            f"tracking.uri=sqlite:///{tmp / name}.db",
            f"data.root={data_root()}",
        ],
        tmp,
    )
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"]
    return seconds, float(best), len(re.findall(r"^\[optuna\] trial \d+ pruned", out, flags=re.MULTILINE))


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    # Each sample is a whole search (minutes): fewer repeats than the micro-benchmarks.
    repeats = 1 if quick else min(repeats, 3)
    budget = QUICK if quick else FULL
    found: dict[str, list[tuple[float, float, int]]] = {"median": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        counter = iter(range(10**6))

        def side(pruner: str):
            def once() -> float:
                found[pruner].append(search(Path(tmp), f"{pruner}{next(counter)}", pruner, budget))
                return found[pruner][-1][0]

            return once

        times = interleaved({p: side(p) for p in found}, repeats)
    best = {p: [r[1] for r in rs] for p, rs in found.items()}
    pruned = [r[2] for r in found["median"]]
    what = "4 trials x 2 epochs, 1,000 images" if quick else "10 trials x 8 epochs, 2,000 images"
    return [
        row(
            "pruning",
            f"optuna_mlp search ({what}), wall time: median pruning vs none",
            median(times["median"]),
            median(times["none"]),
            "s",
            note=f"{median(pruned):g} of the trials pruned",
            samples=times["median"],
            samples_none=times["none"],
            pruned=pruned,
        ),
        row(
            "pruning",
            f"optuna_mlp search ({what}), best validation accuracy: median pruning vs none",
            median(best["median"]),
            median(best["none"]),
            "acc",
            samples=best["median"],
            samples_none=best["none"],
        ),
    ]
