"""One job of a measuring stage (baselines, depth): its own MLflow run, a child of the sweep's
parent run, FINISHED with the numbers, or KILLED/FAILED as it ended.

The stage supplies what it measures; this module gives every such job the same tags, the same
`Reproduce with:` note, the same handling of a failed job, and the same resume: the same sweep run
again after a failure keeps the jobs that finished instead of measuring them again.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf

from pipeline.common import atomic
from pipeline.common import metric_names as names


def finished_job(uri: str, parent_id: str, tags: dict[str, str]):
    """The FINISHED run of this sweep job (same number, same overrides) under `parent_id`, if any.

    Its runs that did not finish are tagged as retried: the job has finished in another run, or runs
    again in a new one, and the parent counts each job once."""
    from pipeline.stages.sweep import RETRIED_TAG
    from pipeline.tracking.runs import Run
    from pipeline.tracking.sweeps import child_runs

    same = [
        child
        for child in child_runs(Run(uri, parent_id))
        if all(child.data.tags.get(k) == tags.get(k) for k in ("sweep.job", "hydra.overrides"))
    ]
    for child in same:
        if child.info.status != "FINISHED" and child.data.tags.get(RETRIED_TAG) != "true":
            Run(uri, child.info.run_id).set_tags({RETRIED_TAG: "true"})
    return next((child for child in same if child.info.status == "FINISHED"), None)


def run_measurement(
    cfg: DictConfig,
    stage: str,
    name: str,
    params: dict[str, object],
    measure: Callable[[], dict[str, float]],
    artifact_dir: str | None = None,
) -> dict[str, float]:
    """Open the job's run, log `params` and the dataset, log what `measure()` returns, end the run.

    `artifact_dir`: a folder under the job's run_dir that `measure()` fills; logged as the run's
    artifacts of the same name once the metrics are.

    `stage` is the module's short name (`python -m pipeline.stages.<stage>`), `name` the job's
    (the run is named `<name>-s<seed>-<time>` and tagged `model=<name>`). Returns the metrics: the
    kept run's when the same sweep had already finished this job.
    """
    from hydra.core.hydra_config import HydraConfig

    from pipeline.data.mnist import dataset_record
    from pipeline.tracking.client import resolve_uri
    from pipeline.tracking.provenance import git_state, hydra_tags
    from pipeline.tracking.runs import create_run, end_status
    from pipeline.tracking.sweeps import sweep_parent_id

    overrides = cast(list[str], OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))
    command = f"python -m pipeline.stages.{stage} " + " ".join(shlex.quote(o) for o in overrides)
    tags = {
        "mlflow.runName": f"{name}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}",
        "mlflow.note.content": f"Reproduce with:\n\n    {command.strip()}",
        "model": name,
        "seed": str(cfg.seed),
        "hydra.overrides": " ".join(overrides) or "none",
        **git_state(),
        **hydra_tags(),
    }
    if parent := sweep_parent_id():
        tags["mlflow.parentRunId"] = parent
        kept = finished_job(resolve_uri(cfg.tracking.uri), parent, tags)
        if kept is not None:  # the same sweep again, after it failed: a finished job is kept, not measured again
            print(f"[{stage}] {name}: finished in run {kept.info.run_id}; kept", flush=True)
            return dict(kept.data.metrics)
    run = create_run(resolve_uri(cfg.tracking.uri), cfg.tracking.experiment, tags["mlflow.runName"], tags)
    try:
        run.log_params({"seed": cfg.seed, "model.name": name, **params})
        record = dataset_record(cfg.data)
        run.log_dataset(record["name"], record["digest"], record["source"], record["profile"])
        cpu, started = time.process_time(), time.perf_counter()
        metrics = measure()
        # what the job cost: CPU-seconds of this process, all its threads (the report's compute table)
        metrics |= {names.JOB_CPU_SECONDS: time.process_time() - cpu, names.JOB_SECONDS: time.perf_counter() - started}
        run.log_metrics(metrics)
        out = Path(cfg.run_dir)
        if artifact_dir is not None:
            run.log_artifacts(out / artifact_dir, artifact_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / "metrics.json", {"job": name, "run_id": run.run_id, **metrics})
    except BaseException as err:
        run.end(end_status(err))
        if isinstance(err, Exception) and sweep_parent_id():  # named with its overrides, counted by the parent
            from pipeline.stages.sweep_jobs import report_failed_job

            report_failed_job(cfg.run_dir, overrides, err)
        raise
    run.end("FINISHED")
    print(f"[{stage}] {name}: MLflow run {run.run_id}", flush=True)
    return metrics
