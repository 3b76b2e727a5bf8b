"""GPU readiness (needs CUDA; without it every row says "skipped: no CUDA device").

CNN to 99.5 %   experiment=cnn with trainer=gpu trainer.precision=bf16-mixed: data resident on the
                GPU (MNISTDataModule puts the tensors on the root device), channels_last from
                conf/model/cnn.yaml; seconds of training to 99.5 % test accuracy, target <= 10 s
                (an H100). Measured with time_to_accuracy.train_to_accuracy: the Trainer `fit` builds
                (pipeline.stages.train.build_trainer, our callbacks, MLflow into a temp store), plus a
                callback that stops at the target (fit itself cannot stop there).
DDP scaling     with more than one GPU: seconds per epoch (median of epochs 2-3, from the run's
                history.csv) of `python -m pipeline.stages.train --params` with trainer=gpu (1 GPU) and with
                trainer=ddp (all GPUs); efficiency = t1 / (n * tn). DDP splits each epoch between
                the ranks, so the ideal is 1.0.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.common import clean_env, data_root, median, row, skipped

GPU = ["experiment=cnn", "trainer=gpu", "trainer.precision=bf16-mixed"]


def epoch_seconds(overrides: list[str], tmp: Path) -> list[float]:
    """Per-epoch seconds of a real `python -m pipeline.stages.train --params` run (DDP re-launches it per GPU)."""
    from omegaconf import OmegaConf

    from pipeline.config.settings import compose

    cfg = compose(
        [
            *overrides,
            f"run_dir={tmp / 'run'}",
            f"data.root={data_root()}",
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
            "tracking.log_model=false",
        ]
    )
    OmegaConf.save(cfg, tmp / "params.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", "--params", "params.yaml"],
        cwd=tmp,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"training failed ({done.returncode}): {done.stderr[-2000:]}")
    with (tmp / "run" / "plots" / "history.csv").open() as f:
        return [float(r["time/epoch_s"]) for r in csv.DictReader(f)]


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    if not torch.cuda.is_available():
        return [
            skipped("gpu", "CNN to 99.5% on 1 GPU, bf16-mixed, channels_last", "no CUDA device"),
            skipped("gpu", "DDP scaling efficiency", "no CUDA device"),
        ]
    from benchmarks.time_to_accuracy import train_to_accuracy

    name = torch.cuda.get_device_name(0)
    if quick:
        overrides, target, limit = [*GPU, "data.train_subset=5000", "trainer.max_epochs=2"], 0.9, None
    else:
        overrides, target, limit = GPU, 0.995, 10
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        got = train_to_accuracy(overrides, target, Path(tmp))
    last = got["history"][-1]
    rows = [
        row(
            "gpu",
            f"CNN to {target:.1%} on 1 GPU, bf16-mixed, channels_last",
            got["seconds"],
            unit="s",
            target=("<=", limit, "ours") if limit else None,
            note=f"{name}; "
            + (
                f"epoch {got['epochs']}, test acc {last[2]:.4f}"
                if got["seconds"] is not None
                else f"not reached in {got['max_epochs']} epochs, test acc {last[2]:.4f}"
            ),
            reached=got["seconds"] is not None,
            history=got["history"],
        )
    ]

    n = torch.cuda.device_count()
    if n < 2 or quick:
        rows.append(skipped("gpu", "DDP scaling efficiency", "one GPU only" if n < 2 else "full size only"))
        return rows
    times = {}
    for label, extra in (("1", ["trainer=gpu"]), (str(n), ["trainer=ddp", f"trainer.devices={n}"])):
        with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
            times[label] = median(epoch_seconds(["experiment=cnn", *extra, "trainer.max_epochs=3"], Path(tmp))[1:])
    efficiency = times["1"] / (n * times[str(n)])
    rows.append(
        row(
            "gpu",
            f"DDP scaling efficiency, {n} GPUs",
            efficiency,
            unit="",
            target=None,
            note=f"{times['1']:.2f} s/epoch on 1 GPU, {times[str(n)]:.2f} s/epoch on {n}",
            seconds_per_epoch=times,
        )
    )
    return rows
