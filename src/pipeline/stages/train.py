"""Train stage: build data, model and trainer from the config, fit, save, track.

    python -m pipeline.stages.train --params params.yaml          # the DVC stage
    python -m pipeline.stages.train model=cnn trainer.max_epochs=5 # a Hydra app: trains, then evaluates
    python -m pipeline.stages.train -m model.hidden=[64,32],[256,128]   # a sweep

Writes <run_dir>/checkpoints/{best,last}.ckpt, <run_dir>/run.json (the MLflow
run id) and <run_dir>/plots/history.csv (per-epoch metrics). Under DDP only
rank 0 writes files or talks to MLflow. `fit` reads top to bottom:
seed -> data -> model -> run -> trainer -> fit -> record (record_training.py).
"""

from __future__ import annotations

import ctypes
import inspect
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from pipeline.stages import record_training as record
from pipeline.stages.order import JOB_ENDS_BEFORE, STAGES
from pipeline.training.resume import clear_stale_outputs, config_fingerprint, resumable

# Settings of conf/trainer/ that are ours, not Lightning's.
_NOT_TRAINER_ARGS = ("progress_refresh",)
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def drop_unusable_nvml_check() -> bool:
    """Unset NVML_CHECK where NVML cannot load; True if it was unset.

    Importing Lightning sets it, so that looking for a GPU never initialises CUDA before a fork;
    torch then asks NVML on every `torch.cuda.is_available()`, and every optimiser step asks (its
    graph-capture check). Without an NVIDIA driver (a CPU machine with PyPI's CUDA build of torch)
    each ask is a failed dlopen of the NVML library (0.1 ms, up to 2 ms on a busy machine), after which torch
    counts the devices the default way anyway: there the variable changes nothing but that cost.
    """
    if os.environ.get(NVML_CHECK) != "1":
        return False
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # the library torch's NVML check loads
    except OSError:
        del os.environ[NVML_CHECK]
        return True
    return False


def build_trainer(cfg: DictConfig, run_dir: Path, run=None):
    """The Lightning Trainer of the pipeline, with its callbacks; returns (trainer, best-checkpoint callback).

    `run` (a tracking.Run) receives the per-epoch metrics; None records them only in history.csv.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    from pipeline.training.callbacks import EpochHistory, EpochSeed
    from pipeline.training.checkpoint_io import AtomicCheckpointIO
    from pipeline.training.robust_guard import MONITOR, guard_from_config

    # Adversarial training with a guard chooses its checkpoint by held-out PGD accuracy, not clean accuracy.
    guard = guard_from_config(cfg)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=MONITOR if guard else "val/acc",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
    )
    # A live bar on a terminal; in logs (DVC, CI) one-line progress reports instead.
    live = sys.stderr.isatty()
    callbacks = [
        checkpoint,
        EpochHistory(run_dir / "plots" / "history.csv", run, quarter_reports=not live),
        EpochSeed(cfg.seed),
    ] + ([guard] if guard else [])
    if live:
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.trainer.progress_refresh))
    trial = optuna_trial_of_job()
    if trial is not None:  # a job of a pruning Optuna sweep
        from pipeline.training.optuna_pruning import OptunaPruning

        callbacks.append(OptunaPruning(trial))
    trainer = L.Trainer(
        **trainer_settings(cfg),
        logger=False,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=live,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )
    return trainer, checkpoint


def optuna_trial_of_job():
    """The Optuna trial this job trains for, when a pruning sweep named one in the environment."""
    from pipeline.training.optuna_trial import TrialRef

    return TrialRef.from_env()


def pruned_epoch(trainer) -> int | None:
    """The epoch after which the Optuna study pruned this training, if it did."""
    from pipeline.training.optuna_pruning import OptunaPruning

    return next((c.pruned_epoch for c in trainer.callbacks if isinstance(c, OptunaPruning)), None)


def trainer_settings(cfg: DictConfig) -> dict[str, Any]:
    """The Trainer arguments of the `trainer` section: every one is passed as is (a new one needs no
    code), and a key that is no Trainer argument is refused, naming the closest one, rather than ignored."""
    import difflib

    import lightning as L

    from pipeline.config.settings import ConfigError

    accepted = inspect.signature(L.Trainer.__init__).parameters
    settings = cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
    for key in settings:
        if key not in accepted and key not in _NOT_TRAINER_ARGS:
            close = difflib.get_close_matches(key, [a for a in accepted if a != "self"], n=1)
            raise ConfigError(
                f"trainer.{key} is no argument of Lightning's Trainer"
                + (f"; did you mean trainer.{close[0]}?" if close else ".")
            )
    return {k: v for k, v in settings.items() if k not in _NOT_TRAINER_ARGS}


def fit(cfg: DictConfig, command: str, overrides: list[str] | None = None) -> dict:
    """Train one model; returns {'run_id', 'tracking_uri', 'best_checkpoint', 'val/acc'} (rank 0; else {})."""
    import lightning as L
    import torch
    from lightning.pytorch.utilities import rank_zero_only

    from pipeline.common import atomic
    from pipeline.nn.models import count_parameters
    from pipeline.tracking import run_ref
    from pipeline.tracking.metric_journal import MetricJournal, TrackingUnreachable, unreachable
    from pipeline.tracking.system_metrics import system_metrics
    from pipeline.training.callbacks import stop_on_ctrl_c
    from pipeline.training.checkpoint_recovery import CHECKPOINTS, loads, resume_point
    from pipeline.training.datamodule import MNISTDataModule
    from pipeline.training.module import Classifier

    trainer_settings(cfg)  # a bad trainer key stops here, before the run is opened
    run_dir = Path(cfg.run_dir)
    # seed
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    # data
    datamodule = MNISTDataModule.from_config(cfg)
    # model
    module = Classifier.from_config(cfg)
    n_params = count_parameters(module.net)
    # run: a new MLflow run, or the interrupted one with the same settings (rank 0 only;
    # rank_zero_only.rank is set from the launcher's environment before any rank starts)
    fingerprint = config_fingerprint(cfg)
    resume = resumable(run_dir, fingerprint)
    rank = rank_zero_only.rank  # type: ignore[attr-defined]  # set on the function at import
    # A checkpoint that does not load is set aside by rank 0; under DDP the other ranks, reading
    # only, come to the same choice.
    ckpt = None
    if resume and rank == 0:
        ckpt = resume_point(run_dir / "checkpoints")
    elif resume:
        ckpt = next((p for p in (run_dir / "checkpoints" / n for n in CHECKPOINTS) if p.is_file() and loads(p)), None)
    if resume and resume.get("state") == run_ref.RECORDING:  # trained already: only the results to record
        return record.record_kept(cfg, run_dir, resume) if rank == 0 else {}
    run = _open_run(cfg, run_dir, resume, ckpt, fingerprint, n_params, command, overrides) if rank == 0 else None
    # Per-epoch metrics go through a journal in the run folder: training never waits on the store.
    journal = None
    try:  # from here on the run always ends: KILLED on Ctrl-C/SIGTERM, FAILED on an error
        if run is not None:
            journal = MetricJournal(run.uri, run.run_id, run_dir, float(cfg.tracking.get("outage_report_s") or 30))
        # CPU, memory and GPU while it trains, into the run (rank 0; off: tracking.system_metrics=false)
        with system_metrics(run, cfg.tracking):
            # trainer
            trainer, checkpoint = build_trainer(cfg, run_dir, journal)
            # fit
            started, cpu_started = time.perf_counter(), time.process_time()
            with stop_on_ctrl_c(trainer) as interrupted:
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt) if ckpt else None)
            if interrupted:
                # Ctrl-C landed where a library swallowed the KeyboardInterrupt (seen inside the MLflow
                # write at an epoch's end): training stopped at the epoch's end; still end as interrupted.
                raise KeyboardInterrupt("training was interrupted")
            train_seconds = time.perf_counter() - started
            cost = {"train_cpu_seconds": time.process_time() - cpu_started}
            if module.diverged_step is not None:
                cost["diverged_step"] = module.diverged_step
                print(
                    f"[train] the loss was not finite at step {module.diverged_step}: training stopped there "
                    "(optim.on_divergence=stop)",
                    flush=True,
                )
            if trainer.strategy.root_device.type == "cuda":  # every GPU of the job was held while it trained
                cost["train_gpu_seconds"] = train_seconds * trainer.num_devices * trainer.num_nodes
            if not trainer.is_global_zero:
                return {}
            # record
            assert journal is not None  # rank 0 has its run
            facts = record.training_results(checkpoint, train_seconds, pruned_epoch(trainer)) | cost
            if overrides is not None:  # a Hydra job lists in run.json the stages after training as they finish
                facts["stages_done"] = []
            record.hand_over(cfg, run_dir, run, journal, fingerprint, facts)
            return record.finish(cfg, run_dir, run, fingerprint, facts)
    except BaseException as err:
        # Never leave a run at RUNNING: Ctrl-C/SIGTERM -> KILLED, anything else -> FAILED.
        from pipeline.tracking.runs import end_status

        if journal is not None:  # what it holds goes into the run as it ends, or stays in the folder
            journal.flush(0 if unreachable(err) else 5)
            journal.close()
        if run is not None and unreachable(err):  # not a bug: what is kept where, and what to type
            text = str(err) if isinstance(err, TrackingUnreachable) else record.unrecorded(run, run_dir)
            print(f"error: {text}", file=sys.stderr, flush=True)
            raise SystemExit(record.OUTAGE_EXIT) from err
        full = atomic.full_disk_error(err)
        if run is not None:
            if full:
                run.log_failure(atomic.full_disk_message(full, run_dir))
            run.end(end_status(err))
        if full:  # not a bug: one line that says where, and that the next run resumes
            print(
                f"error: {atomic.full_disk_message(full, run_dir)}: training resumes from "
                f"{run_dir / 'checkpoints' / 'last.ckpt'} if it exists.",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1) from err
        if isinstance(err, SystemExit) and not err.code:
            # Lightning stops on SIGTERM with a code-less SystemExit, i.e. exit status 0; DVC
            # would take that for success. Exit as a process killed by SIGTERM does (143).
            raise SystemExit(143) from err
        raise


def _open_run(
    cfg: DictConfig,
    run_dir: Path,
    resume: dict | None,
    ckpt: Path | None,
    fingerprint: str,
    n_params: int,
    command: str,
    overrides: list[str] | None,
):
    """The MLflow run this training writes into, announced in run.json (state: training)."""
    from pipeline.data.mnist import dataset_record
    from pipeline.tracking import run_ref, sweeps
    from pipeline.tracking.metric_journal import send_kept
    from pipeline.tracking.runs import start_run

    if resume:
        # An interrupted run with the same settings: continue it, in the same MLflow run.
        run = run_ref.run_of(resume)
        run.open()
    else:
        clear_stale_outputs(run_dir)
        run = start_run(cfg, command, overrides, parent_run_id=sweeps.sweep_parent_id())
    try:  # RUNNING from here: a stop before training starts ends it too, as fit does after
        if resume:
            print(f"[train] resuming MLflow run {run.run_id} from {ckpt or 'epoch 1'}", flush=True)
            send_kept(run_dir)  # what the stopped command could not send
        else:
            run.log_params({"model.parameters": n_params, "config.fingerprint": fingerprint})
            run.log_dataset(**dataset_record(cfg.data))
        record.write_state(cfg, run_dir, run, fingerprint, run_ref.TRAINING)
    except BaseException as err:
        from pipeline.stages.resume_command import store_unreachable
        from pipeline.tracking.runs import end_status

        if not store_unreachable(err):  # a store that does not answer cannot be told either
            run.end(end_status(err))
        raise
    print(f"[train] {cfg.model.name}: {n_params:,} parameters; MLflow run {run.run_id} in {run.uri}", flush=True)
    return run


def run_dvc(cfg: DictConfig) -> None:
    fit(cfg, "dvc repro train  # python -m pipeline.stages.train --params params.yaml")


def run_hydra(cfg: DictConfig) -> float:
    """One job of a Hydra run or sweep: train, then the stages that follow training in the
    pipeline (stages.py); returns best val accuracy (what sweepers optimise).

    The same command again continues what it left unfinished (job.py): an interrupted training
    resumes, a finished one is not trained again and only the stages it lacks run."""
    from hydra.core.hydra_config import HydraConfig

    from pipeline.stages import job
    from pipeline.tracking import sweeps
    from pipeline.tracking.interrupts import sigterm_raises
    from pipeline.training.sweep_ddp import one_ddp_job

    overrides = cast(list[str], OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))  # as typed
    command = "python -m pipeline.stages.train " + " ".join(shlex.quote(o) for o in overrides)
    stages = stages_after_training(cfg)
    trained = False  # past training, the job's run is this job's to end
    try:
        with sigterm_raises():  # SIGTERM between stages ends the run KILLED too, as Ctrl-C does
            left, ref = job.continue_own_run(cfg, overrides, stages)
            if left == "done":
                return float(ref.get("val_best_acc", float("nan")))
            if left == "stages":
                trained = True
                result = {"val/acc": float(ref.get("val_best_acc", float("nan")))}
            else:
                with one_ddp_job(cfg):
                    result = fit(cfg, command.strip(), overrides)
                if not result:
                    return float("nan")
                trained = True
                if "pruned_epoch" in result:  # the sweeper records the trial as pruned; a weak model is not evaluated
                    print(f"[train] pruned after epoch {result['pruned_epoch']}: evaluation skipped", flush=True)
                    return result["val/acc"]
            job.run_stages(cfg, stages, STAGES)
    except BaseException as err:
        from lightning.pytorch.utilities import rank_zero_only

        from pipeline.stages.resume_command import announce

        if rank_zero_only.rank == 0:  # type: ignore[attr-defined]  # one line, from one process
            if trained:
                job.end_run(cfg.run_dir, err)
            announce(cfg.run_dir, overrides, err, stages)
            if isinstance(err, Exception) and sweeps.sweep_parent_id():
                from pipeline.stages.sweep_jobs import report_failed_job

                report_failed_job(cfg.run_dir, overrides, err)
        raise
    return result["val/acc"]


def stages_after_training(cfg: DictConfig) -> list[str]:
    """The stages a Hydra job runs after training, in pipeline order."""
    names = list(STAGES)
    later = names[names.index("train") + 1 : names.index(JOB_ENDS_BEFORE)]
    # The robustness stage takes minutes: only when asked (robustness.after_training=true).
    return [n for n in later if n != "robustness" or cfg.robustness.get("after_training")]


def as_command(task: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """`task` as the training command runs it, in every process that trains (a DDP rank, a
    launcher's worker): the process-level start-up tweaks, which `fit` and `build_trainer`, library
    code that benchmarks and tests call, never make."""

    def command(cfg: DictConfig) -> object:
        from pipeline.stages.library_notices import quiet_unactionable_notices
        from pipeline.stages.reproducible import enter
        from pipeline.stages.startup import imports_without_gc

        quiet_unactionable_notices()  # what is printed only: see library_notices.py
        # Measured: the collector's time in a 1-epoch command falls from 2.0 s (9 full passes) to 0.03 s.
        with imports_without_gc():
            enter(cfg)  # the reproducible mode, set before the first torch import: see reproducible.py
            import lightning  # noqa: F401  (sets NVML_CHECK)

            import pipeline.training.callbacks
            import pipeline.training.datamodule
            import pipeline.training.module  # noqa: F401
            from pipeline.tracking.client import import_store_code

            import_store_code()
        drop_unusable_nvml_check()  # measured: 0.15 ms a step without a driver, 5% of the seed MLP's step
        return task(cfg)

    return command


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.train", as_command(run_dvc), as_command(run_hydra), fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
