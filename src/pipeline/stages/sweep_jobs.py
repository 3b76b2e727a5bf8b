"""The job's side of a sweep: which sweeps rerun their jobs, and a failed job's report and note.

A job runs in the sweep's process (Hydra's basic launcher) or in a worker (joblib, SLURM), so what
it tells the sweep's end travels as a file in the sweep's folder, not in memory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeline.common import atomic

# A failed job's note in the sweep's folder: job-failed-<job number>.json
FAILED_JOB_PREFIX = "job-failed-"


def reruns_jobs(sweeper: DictConfig) -> bool:
    """Whether the same sweep run again resumes the failed one: Hydra's grid sweeper, whose jobs are
    the same each time. The Optuna sweeper retries its trials through its study instead."""
    return "optuna" not in str(sweeper.get("_target_", "")).lower()


def report_failed_job(run_dir: str | Path, overrides: list[str], err: BaseException) -> None:
    """A job of a sweep that failed: say so with its overrides and run folder (Hydra names only the
    first failure, and not the folder), and leave a note in the sweep's folder for the parent's count."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    typed = " ".join(overrides)
    print(
        f"[sweep] job {hydra.job.num} failed: {type(err).__name__}: {str(err).strip()[:300]}\n"
        f"[sweep]   overrides: {typed}\n[sweep]   run folder: {Path(run_dir).absolute()}",
        file=sys.stderr,
        flush=True,
    )
    note = {"overrides": typed, "run_dir": str(Path(run_dir).absolute()), "error": f"{type(err).__name__}: {err}"}
    atomic.write_json(Path(str(hydra.sweep.dir)) / f"{FAILED_JOB_PREFIX}{hydra.job.num}.json", note)


def failed_jobs(sweep_dir: Path) -> list[dict]:
    """The failures report_failed_job noted in a sweep's folder (from any process of the launcher)."""
    found = []
    for path in sorted(sweep_dir.glob(f"{FAILED_JOB_PREFIX}*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found
