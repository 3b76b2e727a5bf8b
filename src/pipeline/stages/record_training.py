"""The record step of training: hand what training found to the tracking store and end the run.

run.json says "recording" from the moment training ends until the store has the results (summary
metrics, best checkpoint, model); a command stopped in between, or a tracking server that did not
answer, leaves that state, and the same command records the run again without training again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.common import metric_names as names

# Tags of a trial's MLflow run that an Optuna study pruned (hydra.sweeper.pruner).
PRUNED_TAG = "optuna.pruned"
PRUNED_EPOCH_TAG = "optuna.pruned_epoch"
# Trained, but the tracking server did not take the results: sysexits' EX_TEMPFAIL ("try again
# later"). Not 0: DVC must not cache a stage whose run is unrecorded; not 1: nothing is broken.
OUTAGE_EXIT = 75


def write_state(cfg: DictConfig, run_dir: Path, run, fingerprint: str, state: str, **facts: Any) -> None:
    """run.json: the run, its settings' fingerprint, its state, what training found so far, and
    `sweep_parent`, the sweep this job belongs to (none outside a sweep)."""
    from pipeline.tracking import run_ref, sweeps

    parent = sweeps.sweep_parent_id()
    run_ref.write(
        run_dir,
        run,
        experiment=cfg.tracking.experiment,
        config_hash=fingerprint,
        state=state,
        **facts,
        **({"sweep_parent": parent} if parent else {}),
    )


# What training cost, as run.json keeps it and the run's metrics show it (train.py measures it), and
# the step at which it diverged where optim.on_divergence=stop let it.
COST = {
    "train_cpu_seconds": names.TRAIN_CPU_SECONDS,
    "train_gpu_seconds": names.TRAIN_GPU_SECONDS,
    "diverged_step": names.TRAIN_DIVERGED_STEP,
}


def cost(facts: dict[str, Any]) -> dict[str, float]:
    return {metric: facts[key] for key, metric in COST.items() if key in facts}


def training_results(checkpoint, train_seconds: float, pruned: int | None) -> dict[str, Any]:
    """What training found, as run.json records it: the best checkpoint, its validation accuracy, the time.

    `pruned`: the epoch after which an Optuna study stopped this trial; its model is no candidate,
    so it is neither logged nor registered."""
    best = checkpoint.best_model_path or checkpoint.last_model_path
    best_val = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else float("nan")
    return {
        "best_checkpoint": str(best),
        "val_best_acc": best_val,
        "train_seconds": train_seconds,
        **({"pruned_epoch": pruned} if pruned is not None else {}),
    }


def hand_over(cfg: DictConfig, run_dir: Path, run, journal, fingerprint: str, facts: dict[str, Any]) -> None:
    """run.json says "recording" (with the results); the summary metrics join the journal, which is
    given tracking.outage_wait_s to reach the store. If it does not, TrackingUnreachable says what to
    type: everything stays in the run folder."""
    from pipeline.tracking import run_ref
    from pipeline.tracking.metric_journal import TrackingUnreachable

    # "recording" from here on: a command stopped while the results go to the store records them
    # again (the same command), without training again.
    write_state(cfg, run_dir, run, fingerprint, run_ref.RECORDING, **facts)
    journal.log_metrics({"val/best_acc": facts["val_best_acc"], "time/train_s": facts["train_seconds"], **cost(facts)})
    wait = float(cfg.tracking.get("outage_wait_s") or 240)
    sent = journal.flush(wait)
    journal.close()
    if sent:
        return
    raise TrackingUnreachable(
        f"training finished, but the tracking server {run.uri} did not answer (waited {wait:.0f} s, "
        f"tracking.outage_wait_s): run {run.run_id} is not recorded yet. Nothing is lost: the checkpoints "
        f"and {journal.unsent} unsent metrics are in {run_dir} (run.json state: recording). Once the server "
        f"answers, run the same command with run_dir={run_dir.absolute()}: it records the run without training again."
    )


def record_kept(cfg: DictConfig, run_dir: Path, ref: dict[str, Any]) -> dict:
    """A training that ended while the tracking server did not answer: send what it kept, then record it."""
    from pipeline.tracking import run_ref
    from pipeline.tracking.metric_journal import TrackingUnreachable, answers, send_kept, unreachable

    run = run_ref.run_of(ref)
    print(f"[train] run {run.run_id} was trained; recording its results from {run_dir}", flush=True)
    kept = ("best_checkpoint", "val_best_acc", "train_seconds", *COST, "pruned_epoch", "stages_done")
    facts: dict[str, Any] = {k: ref[k] for k in kept if k in ref}
    try:
        if not answers(run.uri):  # at once, not after MLflow's minutes of retries
            raise TrackingUnreachable(f"{run.uri} does not answer")
        run.open()
        send_kept(run_dir)
        return finish(cfg, run_dir, run, ref["config_hash"], facts)
    except Exception as err:
        if not unreachable(err):
            raise
        print(f"error: {unrecorded(run, run_dir)}", file=sys.stderr, flush=True)
        raise SystemExit(OUTAGE_EXIT) from TrackingUnreachable(str(err))


def unrecorded(run, run_dir: Path) -> str:
    return (
        f"the tracking server {run.uri} does not answer: run {run.run_id} is trained but not recorded yet. "
        f"Nothing is lost: the checkpoints and unsent metrics are in {run_dir} (run.json state: recording). "
        f"Once the server answers, run the same command with run_dir={run_dir.absolute()}."
    )


def finish(cfg: DictConfig, run_dir: Path, run, fingerprint: str, facts: dict[str, Any]) -> dict:
    """The best checkpoint and its validation accuracy into run.json and the MLflow run, which then ends
    (its summary metrics are in the run already)."""
    from pipeline.tracking import run_ref

    best, best_val, train_seconds = facts["best_checkpoint"], facts["val_best_acc"], facts["train_seconds"]
    pruned = facts.get("pruned_epoch")
    if pruned is not None:
        run.set_tags({PRUNED_TAG: "true", PRUNED_EPOCH_TAG: str(pruned)})
    run.log_artifact(best, "checkpoints")
    from pipeline.config.model_policy import model_policy

    logs, registers = model_policy(cfg) if pruned is None else (False, False)
    if logs:
        from pipeline.nn.builders import load_checkpoint

        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        name = cfg.tracking.registered_model if registers else None
        version = run.log_model(load_checkpoint(best), model_cfg, name)
        if registers:
            print(f"[train] registered model {name} version {version}", flush=True)
        else:
            print(
                f"[train] logged the model in run {run.run_id}, not registered: an ad-hoc run "
                f"(tracking.register=true registers it)",
                flush=True,
            )
    # Completed only once the store has it all: until then "recording" sends the same command here again.
    write_state(cfg, run_dir, run, fingerprint, run_ref.COMPLETED, **facts)
    run.end("FINISHED")  # later stages reopen it to add their results
    print(
        f"[train] done in {train_seconds:.1f}s: best val/acc={best_val:.4f}; "
        f"checkpoints in {run_dir / 'checkpoints'}, run id in {run_dir / 'run.json'}",
        flush=True,
    )
    return {
        "run_id": run.run_id,
        "tracking_uri": run.uri,
        "best_checkpoint": best,
        "val/acc": best_val,
        **({"pruned_epoch": pruned} if pruned is not None else {}),
    }
