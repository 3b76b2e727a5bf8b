"""Resuming an interrupted training: which run it was, and whether its checkpoint may continue."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf


def config_fingerprint(cfg: DictConfig) -> str:
    """Identifies what a checkpoint was trained with (settings that do not change training are left out)."""
    relevant = {
        k: v
        for k, v in cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True)).items()
        if k not in ("run_dir", "tracking", "evaluate", "robustness")
    }
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(relevant)).encode()).hexdigest()[:16]


def resumable(run_dir: Path, fingerprint: str) -> dict | None:
    """The run.json of an unfinished run with the same settings, if any: training continues in its
    MLflow run, from its checkpoint or, stopped before the first one, from epoch 1."""
    from pipeline.tracking import run_ref

    ref = run_ref.find(run_dir)
    if ref is None:
        return None
    unfinished = ref.get("state") in run_ref.UNFINISHED  # "recording": trained, results not yet in the store
    return ref if unfinished and ref.get("config_hash") == fingerprint else None


def clear_stale_outputs(run_dir: Path) -> None:
    """Checkpoints and history of a finished or different run must not leak into a new one.

    A finished run's best checkpoint is in its MLflow run (artifact checkpoints/best.ckpt), so its
    folder goes; an unfinished run's checkpoints are its only copy: they are kept, renamed."""
    from pipeline.tracking import run_ref
    from pipeline.training.checkpoint_recovery import set_aside

    ref = run_ref.find(run_dir)
    if ref is not None and ref.get("state") in run_ref.UNFINISHED:
        kept = set_aside(run_dir / "checkpoints")
        if kept is not None:
            print(f"[train] the unfinished run's checkpoints are kept in {kept}", flush=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "plots" / "history.csv").unlink(missing_ok=True)


def own_run(
    folders: list[Path], fingerprint: str, parent: str | None, stages: list[str]
) -> tuple[Path, dict, str] | None:
    """The run folder, among `folders`, that the same command left unfinished: same settings, same
    sweep parent (None outside a sweep); the most recent first. With what is left to do:
    "training" (interrupted while training), "stages" (trained; `stages` not all done) or, only
    for a job of a sweep run again (`parent`), "done" (finished: the sweep keeps it as it is)."""
    from pipeline.tracking import run_ref

    found = []
    for folder in folders:
        ref = run_ref.find(folder)
        if ref is None or ref.get("config_hash") != fingerprint or ref.get("sweep_parent") != parent:
            continue
        left = what_is_left(ref, stages)
        if left != "done" or parent is not None:
            found.append(((folder / run_ref.RUN_REF).stat().st_mtime, folder, ref, left))
    if not found:
        return None
    _, folder, ref, left = max(found, key=lambda f: f[0])
    return folder, ref, left


def what_is_left(ref: dict, stages: list[str]) -> str:
    """What a run.json's run still needs: "training" (or its recording), "stages" (trained, some of
    `stages` not done) or "done"."""
    from pipeline.tracking import run_ref

    if ref.get("state") in run_ref.UNFINISHED:  # "recording": trained; fit() records it without training
        return "training"
    # Only a Hydra job's run.json lists its stages (a DVC stage's, or an older one's, does not).
    tracked = "stages_done" in ref and "pruned_epoch" not in ref
    if ref.get("state") == "completed" and tracked and run_ref.stages_missing(ref, stages):
        return "stages"
    return "done"
