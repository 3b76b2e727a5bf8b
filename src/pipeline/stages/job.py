"""A Hydra training job run again: it finds what it left unfinished and does only what is missing.

Without `run_dir=`, a job looks for the run folder the same settings left unfinished (run.json's
config fingerprint, see training/resume.py) among the folders Hydra gives runs and sweep jobs:
an interrupted training resumes there, in its MLflow run; a finished training is not trained
again, and only the stages after it that did not finish run (evaluate, robustness). In a sweep
run again after it failed, a job that finished is kept as it is. (Trials of the Optuna sweeper
are retried through its study instead, as new runs.) Past training, an interrupted
or failed stage ends the run KILLED or FAILED, so no run stays FINISHED without its results.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig


def run_folders() -> list[Path]:
    """Where Hydra puts runs (outputs/runs/*) and sweep jobs (multirun/*/*), as this config names them."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    runs, sweeps = Path(hydra.run.dir).parent, Path(hydra.sweep.dir).parent
    return [p.parent.absolute() for p in [*runs.glob("*/run.json"), *sweeps.glob("*/*/run.json")]]


def continue_own_run(cfg: DictConfig, overrides: list[str], stages: list[str]) -> tuple[str, dict]:
    """Point cfg.run_dir at the run this command left unfinished, if any; returns what is left to
    do there ("new", "training", "stages" or "done") and its run.json."""
    from pipeline.stages.cli import remove_if_empty
    from pipeline.tracking import run_ref, sweeps
    from pipeline.training.resume import config_fingerprint, own_run, what_is_left

    fingerprint = config_fingerprint(cfg)
    if any(o.startswith("run_dir=") for o in overrides):
        # The folder was named: a training it finished with the same settings is not done again.
        ref = run_ref.find(cfg.run_dir)
        if ref is not None and ref.get("config_hash") == fingerprint and what_is_left(ref, stages) == "stages":
            _say_trained(cfg.run_dir, ref, stages)
            return "stages", ref
        return "new", ref or {}
    from hydra.core.hydra_config import HydraConfig

    from pipeline.stages.sweep_jobs import reruns_jobs

    if not reruns_jobs(HydraConfig.get().sweeper):
        return "new", {}
    found = own_run(run_folders(), fingerprint, sweeps.sweep_parent_id(), stages)
    if found is None:
        return "new", {}
    folder, ref, left = found
    remove_if_empty(cfg.run_dir)  # the folder Hydra made for this command, unused
    cfg.run_dir = str(folder)
    if left == "done":
        print(
            f"[train] this job finished in {folder} (MLflow run {ref['run_id']}, best val/acc "
            f"{ref.get('val_best_acc', float('nan')):.4f}): kept, not run again",
            flush=True,
        )
    elif left == "stages":
        _say_trained(folder, ref, stages)
    else:
        what = "a trained, unrecorded run" if ref.get("state") == run_ref.RECORDING else "an unfinished training"
        print(
            f"[train] the same settings left {what} in {folder}: continuing it "
            "(run_dir=<another folder> starts a new run)",
            flush=True,
        )
    return left, ref


def _say_trained(folder: str | Path, ref: Mapping, stages: list[str]) -> None:
    from pipeline.tracking import run_ref

    missing = run_ref.stages_missing(ref, stages)
    print(
        f"[train] already trained in {folder} (MLflow run {ref['run_id']}): not training again; "
        f"running what is missing: {', '.join(missing)}",
        flush=True,
    )


def run_stages(cfg: DictConfig, stages: list[str], table: Mapping[str, tuple[str, str]]) -> None:
    """The stages after training that this run has not finished, in order, each marked done in run.json."""
    from pipeline.tracking import run_ref

    ref = run_ref.find(cfg.run_dir) or {}
    for stage in run_ref.stages_missing(ref, stages):
        module, _, function = table[stage][1].partition(":")
        # By name: the DVC train stage never runs the stages after it (see stages/order.py).
        getattr(importlib.import_module(module), function)(cfg)
        run_ref.mark_stage_done(cfg.run_dir, stage)


def end_run(run_dir: str | Path, err: BaseException) -> None:
    """End the job's run as the job ended (KILLED, FAILED), whatever a stage left it at: FINISHED
    by training before evaluate started, or RUNNING if the stop came as evaluate reopened it."""
    from pipeline.stages.resume_command import store_unreachable
    from pipeline.tracking import run_ref
    from pipeline.tracking.runs import end_status

    ref = run_ref.find(run_dir)
    if ref is None or store_unreachable(err):
        return
    try:
        run_ref.run_of(ref).end(end_status(err))
    except Exception as end_err:  # the job's own error is the one to report
        print(f"warning: could not mark MLflow run {ref['run_id']} as ended: {end_err}", flush=True)
