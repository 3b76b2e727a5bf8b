"""The sweep protocol: one parent run per Hydra sweep, whose id reaches the jobs through the environment.

The parent is created before any job starts (which also creates the store and experiment once,
so parallel jobs never race to initialise them). Its id travels in $PIPELINE_PARENT_RUN_ID: the
joblib launcher's worker processes inherit it, and each job's run names it as parent. This is
the only code that touches that variable.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.tracking.client import client, resolve_uri
from pipeline.tracking.provenance import git_state
from pipeline.tracking.runs import Run, create_run

if TYPE_CHECKING:
    from mlflow.entities import Run as MlflowRun
    from omegaconf import DictConfig

_SWEEP_PARENT_ENV = "PIPELINE_PARENT_RUN_ID"
SWEEP_HOST_TAG, SWEEP_PID_TAG = "sweep.host", "sweep.pid"


def announce_sweep_parent(run_id: str | None) -> None:
    """Make `run_id` the parent of the runs this process and its workers start (None: no parent)."""
    if run_id:
        os.environ[_SWEEP_PARENT_ENV] = run_id
    else:
        os.environ.pop(_SWEEP_PARENT_ENV, None)


def sweep_parent_id() -> str | None:
    """The parent run of a sweep job, if this process runs one (see announce_sweep_parent)."""
    return os.environ.get(_SWEEP_PARENT_ENV) or None


def start_sweep(config: DictConfig, name: str, tags: Mapping[str, str]) -> Run:
    """Create a sweep's parent run (which also creates the store and experiment once)."""
    tags = {**tags, **git_state(), **owner_tags()}
    return create_run(resolve_uri(config.tracking.uri), config.tracking.experiment, name, tags)


def child_runs(parent: Run) -> list[MlflowRun]:
    """The runs whose parent is `parent` (a sweep's jobs), as MLflow Run objects."""
    c = client(parent.uri)
    experiment = c.get_run(parent.run_id).info.experiment_id
    runs: list[MlflowRun] = c.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'")
    return runs


def unfinished_sweep(config: DictConfig, overrides: str) -> Run | None:
    """The parent run of the latest sweep with the same overrides, if that sweep did not finish
    (FAILED or KILLED): the same command again resumes it rather than starting over."""
    uri = resolve_uri(config.tracking.uri)
    c = client(uri)
    experiment = c.get_experiment_by_name(config.tracking.experiment)
    if experiment is None:
        return None
    same = c.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.sweep = 'parent' and tags.`hydra.overrides` = '{_quoted(overrides or 'none')}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not same or not (same[0].info.status in ("FAILED", "KILLED") or _stale(same[0])):
        return None
    return Run(uri, same[0].info.run_id)


def owner_tags() -> dict[str, str]:
    """Which process runs a sweep: a parent left RUNNING by a process that is gone is resumable."""
    return {SWEEP_HOST_TAG: socket.gethostname(), SWEEP_PID_TAG: str(os.getpid())}


def _stale(parent: MlflowRun) -> bool:
    """A RUNNING parent whose sweep process, on this machine, is gone (killed, or it could not end
    the run: the store was unreachable at the time)."""
    tags = parent.data.tags
    if parent.info.status != "RUNNING" or tags.get(SWEEP_HOST_TAG) != socket.gethostname():
        return False
    try:
        os.kill(int(tags.get(SWEEP_PID_TAG, "0")), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):
        return False
    return False


def _quoted(text: str) -> str:
    """A value inside MLflow's single-quoted search string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
