"""The run.json protocol: the file in a run folder that ties DVC's outputs to their MLflow run.

Training writes it (state "training", then "completed" with the best checkpoint, or "recording"
while the tracking server does not answer); every later stage reads it to find the model and the
run to write into. A Hydra job also lists there the stages after training that have finished
(`stages_done`), so running the same command again runs only what is missing, and names its
sweep's parent run (`sweep_parent`), so a sweep run again finds its own jobs. This is the only code that reads
or writes run.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.tracking.client import check_store
from pipeline.tracking.runs import Run

RUN_REF = "run.json"
# States: "training" (under way or stopped: resumable), "recording" (trained, but the tracking server
# did not answer: the results wait in the run folder; the same command records them), "completed".
TRAINING, RECORDING, COMPLETED = "training", "recording", "completed"
UNFINISHED = (TRAINING, RECORDING)


def write(run_dir: str | Path, run: Run, **extra: Any) -> Path:
    """Name `run` (and `extra` facts about it) in `<run_dir>/run.json`, atomically."""
    return _write(Path(run_dir) / RUN_REF, {"run_id": run.run_id, "tracking_uri": run.uri, **extra})


def _write(path: Path, ref: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(ref), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def mark_stage_done(run_dir: str | Path, stage: str) -> None:
    """Record in run.json that `stage` (evaluate, robustness) has finished for this run."""
    ref = find(run_dir)
    if ref is None:
        return
    ref["stages_done"] = sorted({*ref.get("stages_done", []), stage})
    _write(Path(run_dir) / RUN_REF, ref)


def stages_missing(ref: Mapping[str, Any], stages: list[str]) -> list[str]:
    """Those of `stages` a completed training's run.json does not list as done."""
    done = set(ref.get("stages_done", []))
    return [s for s in stages if s not in done]


def read(run_dir: str | Path) -> dict[str, Any]:
    """The content of `<run_dir>/run.json`; its store is checked now, before a stage computes for minutes."""
    path = Path(run_dir) / RUN_REF
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train a model first (`dvc repro train` or "
            f"`python -m pipeline.stages.train run_dir={run_dir}`)."
        )
    ref: dict[str, Any] = json.loads(path.read_text())
    check_store(ref.get("tracking_uri", ""))
    return ref


def find(run_dir: str | Path) -> dict[str, Any] | None:
    """The content of `<run_dir>/run.json`, or None when there is none or it cannot be read (no store check)."""
    path = Path(run_dir) / RUN_REF
    try:
        ref = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return ref if isinstance(ref, dict) else None


def run_of(ref: Mapping[str, Any]) -> Run:
    """The MLflow run a run.json names."""
    return Run(ref["tracking_uri"], ref["run_id"])


def best_checkpoint(run_dir: str | Path, ref: Mapping[str, Any]) -> Path:
    """The checkpoint a run.json names as best (the conventional place if it names none)."""
    return Path(ref.get("best_checkpoint") or Path(run_dir) / "checkpoints" / "best.ckpt")
