"""Train stage: build data, model and trainer from the config, fit, save, track.

    python -m pipeline.train --params params.yaml          # the DVC stage
    python -m pipeline.train model=cnn trainer.max_epochs=5 # a Hydra app: trains, then evaluates
    python -m pipeline.train -m model.hidden=[64,32],[256,128]   # a sweep

Writes <run_dir>/checkpoints/{best,last}.ckpt, <run_dir>/run.json (the MLflow
run id) and <run_dir>/plots/history.csv (per-epoch metrics). Under DDP only
rank 0 writes files or talks to MLflow.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shlex
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

EPOCH_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")


def _history_callback(path: Path, uri: str | None, run_id: str | None, quarter_reports: bool):
    """Per-epoch metrics to a CSV (for `dvc plots`) and to MLflow, with step = epoch."""
    import lightning as L

    from pipeline import tracking

    class EpochHistory(L.Callback):
        def __init__(self):
            self.rows: list[dict] = []
            self.epoch_start = time.perf_counter()

        def on_train_start(self, trainer, pl_module):
            # Resumed from a checkpoint: keep the epochs that were already recorded.
            if trainer.current_epoch > 0 and path.is_file():
                with path.open() as f:
                    self.rows = [{k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                                 for row in csv.DictReader(f) if int(row["epoch"]) <= trainer.current_epoch]

        def on_train_epoch_start(self, trainer, pl_module):
            self.epoch_start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            # Without a live progress bar (logs, DVC), long epochs still report progress.
            total = trainer.num_training_batches
            if quarter_reports and trainer.is_global_zero and total >= 8 and (batch_idx + 1) % (total // 4) == 0 \
                    and batch_idx + 1 < total:
                print(f"[train] epoch {trainer.current_epoch + 1}: {batch_idx + 1}/{total} batches, "
                      f"{time.perf_counter() - self.epoch_start:.0f}s", flush=True)

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.sanity_checking or not trainer.is_global_zero:
                return
            found = {k: float(trainer.callback_metrics[k]) for k in EPOCH_METRICS if k in trainer.callback_metrics}
            found["time/epoch_s"] = time.perf_counter() - self.epoch_start
            found["train/lr"] = trainer.optimizers[0].param_groups[0]["lr"]
            row = {"epoch": trainer.current_epoch + 1, **found}
            self.rows.append(row)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
                writer.writerows(self.rows)
            if run_id:
                tracking.log_metrics(uri, run_id, found, step=row["epoch"])
            print(f"[train] epoch {row['epoch']}/{trainer.max_epochs}: "
                  + "  ".join(f"{k}={v:.4f}" for k, v in found.items()), flush=True)

    return EpochHistory()


def _epoch_seeding(seed: int):
    """Re-seed every RNG at each epoch start: a resumed run draws the same augmentations and dropout masks."""
    import lightning as L

    class EpochSeed(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            L.seed_everything(seed + trainer.current_epoch, verbose=False)

    return EpochSeed()


def config_fingerprint(cfg: DictConfig) -> str:
    """Identifies what a checkpoint was trained with (settings that do not change training are left out)."""
    import hashlib

    relevant = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                if k not in ("run_dir", "tracking", "evaluate", "robustness")}
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(relevant)).encode()).hexdigest()[:16]


def _resumable(run_dir: Path, fingerprint: str) -> dict | None:
    """The run.json of an unfinished run with the same settings and a last checkpoint, if any."""
    import json

    ref_path, last = run_dir / "run.json", run_dir / "checkpoints" / "last.ckpt"
    if not (ref_path.is_file() and last.is_file()):
        return None
    try:
        ref = json.loads(ref_path.read_text())
    except ValueError:
        return None
    return ref if ref.get("state") == "training" and ref.get("config_hash") == fingerprint else None


def _build_trainer(cfg: DictConfig, run_dir: Path, uri: str | None, run_id: str | None):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from pipeline.robust_guard import MONITOR, guard_from_config

    # Adversarial training with a guard chooses its checkpoint by held-out PGD accuracy, not clean accuracy.
    guard = guard_from_config(cfg)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=MONITOR if guard else "val/acc",
                                 mode="max", save_last=True, auto_insert_metric_name=False)
    # A live bar on a terminal; in logs (DVC, CI) one-line progress reports instead.
    live = sys.stderr.isatty()
    callbacks = [checkpoint, _history_callback(run_dir / "plots" / "history.csv", uri, run_id, not live),
                 _epoch_seeding(cfg.seed)] + ([guard] if guard else [])
    if live:
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.trainer.progress_refresh))
    t = cfg.trainer
    trainer = L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_epochs=t.max_epochs, deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps, logger=False, default_root_dir=str(run_dir),
        callbacks=callbacks, enable_progress_bar=live,
        limit_train_batches=t.get("limit_train_batches"), limit_val_batches=t.get("limit_val_batches"),
        num_sanity_val_steps=0, enable_model_summary=False,
    )
    return trainer, checkpoint


def fit(cfg: DictConfig, command: str, overrides: list[str] | None = None) -> dict:
    """Train one model; returns {'run_id', 'tracking_uri', 'best_checkpoint', 'val/acc', ...}."""
    import lightning as L
    import torch
    from lightning.pytorch.utilities import rank_zero_only

    from pipeline import tracking
    from pipeline.datamodule import MNISTDataModule
    from pipeline.models import count_parameters
    from pipeline.module import Classifier

    run_dir = Path(cfg.run_dir)
    is_rank_zero = rank_zero_only.rank == 0  # set from the launcher's env, before any process starts
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")

    datamodule = MNISTDataModule.from_config(cfg)
    module = Classifier.from_config(cfg)
    n_params = count_parameters(module.net)

    fingerprint = config_fingerprint(cfg)
    resume = _resumable(run_dir, fingerprint)
    run_id = uri = None
    if is_rank_zero:
        if resume:
            # An interrupted run with the same settings: continue it, in the same MLflow run.
            run_id, uri = resume["run_id"], resume["tracking_uri"]
            tracking.reopen_run(uri, run_id)
            print(f"[train] resuming MLflow run {run_id} from {run_dir / 'checkpoints' / 'last.ckpt'}", flush=True)
        else:
            _clear_stale_outputs(run_dir)
            run_id, uri = tracking.start_run(cfg, command, overrides)
            tracking.log_params(uri, run_id, {"model.parameters": n_params, "config.fingerprint": fingerprint})
        tracking.write_run_ref(run_dir, run_id, uri, experiment=cfg.tracking.experiment,
                               config_hash=fingerprint, state="training")
        print(f"[train] {cfg.model.name}: {n_params:,} parameters; MLflow run {run_id} in {uri}", flush=True)

    try:
        ckpt = run_dir / "checkpoints" / "last.ckpt" if resume else None
        return _fit_and_record(cfg, run_dir, module, datamodule, uri, run_id, ckpt, fingerprint)
    except BaseException as err:
        # Never leave a run at RUNNING: Ctrl-C/SIGTERM -> KILLED, anything else -> FAILED.
        if run_id:
            status = "KILLED" if isinstance(err, (KeyboardInterrupt, SystemExit)) else "FAILED"
            tracking.end_run(uri, run_id, status)
        if isinstance(err, SystemExit) and not err.code:
            # Lightning stops on SIGTERM with a code-less SystemExit, i.e. exit status 0; DVC
            # would take that for success. Exit as a process killed by SIGTERM does (143).
            raise SystemExit(143) from err
        raise


@contextlib.contextmanager
def _stop_on_ctrl_c(trainer):
    """SIGINT raises KeyboardInterrupt as usual, and also asks the trainer to stop, so an
    interrupt is never lost even if the exception is swallowed on its way up."""
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
    finally:
        if signal.getsignal(signal.SIGINT) is on_sigint:  # Lightning may have set its own meanwhile
            signal.signal(signal.SIGINT, previous)


def _clear_stale_outputs(run_dir: Path) -> None:
    """Checkpoints and history of a finished or different run must not leak into a new one."""
    import shutil

    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "plots" / "history.csv").unlink(missing_ok=True)


def _fit_and_record(cfg: DictConfig, run_dir: Path, module, datamodule, uri: str | None, run_id: str | None,
                    ckpt_path: Path | None, fingerprint: str) -> dict:
    from pipeline import tracking

    trainer, checkpoint = _build_trainer(cfg, run_dir, uri, run_id)
    started = time.perf_counter()
    with _stop_on_ctrl_c(trainer) as interrupted:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    if interrupted:
        # Ctrl-C landed where a library swallowed the KeyboardInterrupt (seen inside the MLflow
        # write at an epoch's end): training stopped at the epoch's end; still end as interrupted.
        raise KeyboardInterrupt("training was interrupted")
    train_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return {}

    best = checkpoint.best_model_path or checkpoint.last_model_path
    best_val = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    tracking.log_metrics(uri, run_id, {"val/best_acc": best_val, "time/train_s": train_seconds})
    tracking.write_run_ref(run_dir, run_id, uri, experiment=cfg.tracking.experiment, config_hash=fingerprint,
                           state="completed", best_checkpoint=str(best), val_best_acc=best_val,
                           train_seconds=train_seconds)
    tracking.log_artifact(uri, run_id, best, "checkpoints")
    if cfg.tracking.log_model:
        from pipeline.models import load_checkpoint

        version = tracking.log_model(uri, run_id, load_checkpoint(best), cfg.tracking.registered_model)
        print(f"[train] registered model {cfg.tracking.registered_model} version {version}", flush=True)
    print(f"[train] done in {train_seconds:.1f}s: best val/acc={best_val:.4f}; "
          f"checkpoints in {run_dir / 'checkpoints'}, run id in {run_dir / 'run.json'}", flush=True)
    return {"run_id": run_id, "tracking_uri": uri, "best_checkpoint": best, "val/acc": best_val}


def run_dvc(cfg: DictConfig) -> None:
    result = fit(cfg, "dvc repro train  # python -m pipeline.train --params params.yaml")
    if result:
        # DVC stages end the run's training part; evaluation reopens it.
        from pipeline import tracking

        tracking.end_run(result["tracking_uri"], result["run_id"])


def run_hydra(cfg: DictConfig) -> float:
    """One job of a Hydra run or sweep: train, then evaluate (and, if configured, the
    robustness stage); returns best val accuracy (what sweepers optimise)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    command = "python -m pipeline.train " + " ".join(shlex.quote(o) for o in overrides)
    with _one_ddp_job(cfg):
        result = fit(cfg, command.strip(), overrides)
    if not result:
        return float("nan")
    from pipeline.evaluate import evaluate

    evaluate(cfg)
    if cfg.robustness.get("after_training"):
        from pipeline.robustness.stage import evaluate_robustness

        evaluate_robustness(cfg)
    return result["val/acc"]


@contextlib.contextmanager
def _one_ddp_job(cfg: DictConfig):
    """Multi-process DDP inside a sweep: each job starts its own ranks, once.

    Lightning starts ranks 1..N-1 by re-running sys.argv plus `hydra.run.dir=<run dir>`.
    In a multirun, sys.argv holds `-m` and every sweep value, so each rank would launch
    a whole sweep of its own: give it this job's overrides instead, in this job's directory.
    Lightning also leaves its rendezvous variables (LOCAL_RANK, MASTER_PORT, ...) in the
    environment and the process group open; the next job would take them as "ranks already
    started" and wait for ranks that are gone. Restore both after each job.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or "ddp" not in str(cfg.trainer.strategy):
        yield
        return
    saved_argv, saved_env = list(sys.argv), dict(os.environ)
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task, f"run_dir={Path(cfg.run_dir).resolve()}",
                "hydra.mode=RUN"]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = str(Path(hydra_cfg.runtime.output_dir).resolve())
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)


def main(argv=None) -> None:
    from pipeline.config import stage_main

    stage_main("pipeline.train", run_dvc, run_hydra, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
