"""Lightning callbacks of the training loop: per-epoch history, per-epoch seeding, Ctrl-C."""

from __future__ import annotations

import contextlib
import csv
import time
from pathlib import Path

import lightning as L

from pipeline.common import atomic
from pipeline.common.metric_names import EPOCH_METRICS, TRAIN_STEP_LOSS, VAL_PGD_ACC


class EpochHistory(L.Callback):
    """Per-epoch metrics to a CSV (for `dvc plots`) and to the MLflow run, with step = epoch; and the
    training loss over steps (train/step_loss, step = training step), read off the device once an epoch.

    `run`: anything with Run's `log_metrics` and `log_points`; training passes a MetricJournal
    (tracking/metric_journal.py), which keeps them in the run folder and sends them in the background.

    `quarter_reports`: without a live progress bar (logs, DVC), long epochs still report progress.
    """

    def __init__(self, path: Path, run=None, quarter_reports: bool = False):
        self.path, self.run, self.quarter_reports = Path(path), run, quarter_reports
        self.rows: list[dict] = []
        self.epoch_start = time.perf_counter()

    def on_train_start(self, trainer, pl_module):
        # Resumed from a checkpoint: keep the epochs that were already recorded.
        if trainer.current_epoch > 0 and self.path.is_file():
            with self.path.open() as f:
                self.rows = [
                    {k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                    for row in csv.DictReader(f)
                    if int(row["epoch"]) <= trainer.current_epoch
                ]

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        total = trainer.num_training_batches
        if (
            self.quarter_reports
            and trainer.is_global_zero
            and total >= 8
            and (batch_idx + 1) % (total // 4) == 0
            and batch_idx + 1 < total
        ):
            print(
                f"[train] epoch {trainer.current_epoch + 1}: {batch_idx + 1}/{total} batches, "
                f"{time.perf_counter() - self.epoch_start:.0f}s",
                flush=True,
            )

    def on_train_epoch_end(self, trainer, pl_module):
        # Taken on every process (each keeps its own); rank 0's are the curve the run logs.
        points = pl_module.take_step_losses() if hasattr(pl_module, "take_step_losses") else []
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        found = {k: float(metrics[k]) for k in (*EPOCH_METRICS, VAL_PGD_ACC) if k in metrics}
        found["time/epoch_s"] = time.perf_counter() - self.epoch_start
        found["train/lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        row = {"epoch": trainer.current_epoch + 1, **found}
        self.rows.append(row)
        if self.run is not None:  # first: an epoch in history.csv is an epoch the run has logged (or kept)
            self.run.log_metrics(found, step=row["epoch"])
            if points:
                self.run.log_points(TRAIN_STEP_LOSS, points)
        with atomic.replacing(self.path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(self.rows)
        print(
            f"[train] epoch {row['epoch']}/{trainer.max_epochs}: "
            + "  ".join(f"{k}={v:.4f}" for k, v in found.items()),
            flush=True,
        )


class EpochSeed(L.Callback):
    """Re-seed every RNG at each epoch start: a resumed run draws the same augmentations and dropout masks."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer, pl_module):
        L.seed_everything(self.seed + trainer.current_epoch, verbose=False)


@contextlib.contextmanager
def stop_on_ctrl_c(trainer):
    """SIGINT raises KeyboardInterrupt as usual, and also asks the trainer to stop, so an
    interrupt is never lost even if the exception is swallowed or replaced on its way up."""
    import signal
    import threading

    interrupted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum, frame):
        interrupted.append(signum)
        trainer.should_stop = True
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    except Exception as err:
        if interrupted:
            # Ctrl-C in the middle of a write can surface as the writer's own error (torch.save's
            # zip writer raises RuntimeError "unexpected pos"); the cause is still the interrupt.
            raise KeyboardInterrupt("training was interrupted") from err
        raise
    finally:
        if signal.getsignal(signal.SIGINT) is on_sigint:  # Lightning may have set its own meanwhile
            signal.signal(signal.SIGINT, previous)
