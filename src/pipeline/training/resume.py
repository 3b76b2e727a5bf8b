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
    """The run.json of an unfinished run with the same settings and a checkpoint (last or best), if any."""
    from pipeline.tracking import run_ref
    from pipeline.training.checkpoint_recovery import has_checkpoint

    ref = run_ref.find(run_dir)
    if ref is None or not has_checkpoint(run_dir / "checkpoints"):
        return None
    return ref if ref.get("state") == "training" and ref.get("config_hash") == fingerprint else None


def clear_stale_outputs(run_dir: Path) -> None:
    """Checkpoints and history of a finished or different run must not leak into a new one.

    A finished run's best checkpoint is in its MLflow run (artifact checkpoints/best.ckpt), so its
    folder goes; an unfinished run's checkpoints are its only copy: they are kept, renamed."""
    from pipeline.tracking import run_ref
    from pipeline.training.checkpoint_recovery import set_aside

    ref = run_ref.find(run_dir)
    if ref is not None and ref.get("state") == "training":
        kept = set_aside(run_dir / "checkpoints")
        if kept is not None:
            print(f"[train] the unfinished run's checkpoints are kept in {kept}", flush=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "plots" / "history.csv").unlink(missing_ok=True)
