"""The run API: `Run` (a store and a run id) with every verb a stage uses, and the runs a stage creates.

One run per pipeline execution: training creates it (`start_run`) and names it in
`<run_dir>/run.json` (run_ref.py); evaluation and later stages write into the same run.
A stage writes inside `recording(run)`, which closes the run with its true status
(FINISHED, FAILED, KILLED). Every write holds Ctrl-C until it has finished (interrupts.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipeline.common.metric_names import mlflow_name
from pipeline.tracking.client import artifact_location, client, resolve_uri
from pipeline.tracking.interrupts import ctrl_c_after_write
from pipeline.tracking.provenance import git_state, hydra_tags, run_name, system_tags

if TYPE_CHECKING:
    import torch
    from mlflow import MlflowClient
    from mlflow.entities import Experiment
    from mlflow.entities import Run as MlflowRun
    from omegaconf import DictConfig

# The MLflow UI (3.x) opens an experiment on the page its kind names; without the tag it
# guesses, and an experiment with no traces lands on the GenAI overview. These are training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


@dataclass(frozen=True)
class EvalDataset:
    """A dataset as MLflow records it: a name, a digest of at most 36 characters, where it came from,
    and a profile (sizes, the full checksums)."""

    name: str
    digest: str
    source: Mapping[str, Any]
    profile: Mapping[str, Any]


@dataclass(frozen=True)
class Run:
    """One MLflow run: where it is stored and its id, with the verbs the stages use."""

    uri: str
    run_id: str

    # -- writes ---------------------------------------------------------------------------------
    @ctrl_c_after_write()
    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        model_id: str | None = None,
        dataset: EvalDataset | None = None,
    ) -> None:
        """Log metrics under the names MLflow shows (metric_names.mlflow_name). With `model_id` they are
        also the logged model's metrics (the Models view), measured on `dataset` when given."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        on = {"dataset_name": dataset.name, "dataset_digest": dataset.digest} if dataset else {}
        self._log_batch(
            [Metric(mlflow_name(k), float(v), now, step or 0, model_id=model_id, **on) for k, v in metrics.items()]
        )

    @ctrl_c_after_write()
    def log_points(self, key: str, points: list[tuple[int, float]]) -> None:
        """One metric at many steps (a curve), in as few calls as MLflow allows."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._log_batch([Metric(mlflow_name(key), float(v), now, int(s)) for s, v in points])

    def _log_batch(self, metrics: list[Any]) -> None:
        c = client(self.uri)
        for i in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics a call
            c.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    @ctrl_c_after_write()
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        client(self.uri).log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    @ctrl_c_after_write()
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        client(self.uri).log_artifact(self.run_id, str(path), artifact_path)

    @ctrl_c_after_write()
    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        client(self.uri).log_artifacts(self.run_id, str(folder), artifact_path)

    @ctrl_c_after_write()
    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        client(self.uri).log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    @ctrl_c_after_write()
    def log_failure(self, message: str) -> None:
        """Why the run failed, shown as its `failure` tag in the UI."""
        client(self.uri).set_tag(self.run_id, "failure", message[:5000])

    @ctrl_c_after_write()
    def log_dataset(
        self, name: str, digest: str, source: Mapping[str, Any], profile: Mapping[str, Any], context: str = "training"
    ) -> None:
        """Record the data the run used as an MLflow dataset input (the UI's Dataset column)."""
        self._log_input(EvalDataset(name, digest, source, profile), context, None)

    @ctrl_c_after_write()
    def log_evaluation_dataset(self, dataset: EvalDataset, model_id: str | None) -> None:
        """Record a dataset the model was evaluated on: an input of the run with context `evaluation`,
        tied to the logged model when there is one."""
        self._log_input(dataset, "evaluation", model_id)

    def _log_input(self, dataset: EvalDataset, context: str, model_id: str | None) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput

        entity = Dataset(
            name=dataset.name,
            digest=dataset.digest,
            source_type="http",
            source=json.dumps(dict(dataset.source)),
            profile=json.dumps(dict(dataset.profile)),
        )
        inputs = [DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        models = [LoggedModelInput(model_id)] if model_id else None
        # MLflow looks the dataset row up, then inserts it: jobs starting together on a fresh experiment
        # race on that insert and all but one hit the unique key. The transaction rolled back, so a
        # retry finds the winner's row and only adds this run's input.
        for attempt in range(5):
            try:
                client(self.uri).log_inputs(self.run_id, datasets=inputs, models=models)
                return
            except Exception as err:
                if attempt == 4 or not _lost_insert_race(err):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def log_model(
        self, model: torch.nn.Module, model_cfg: Mapping[str, Any], registered_name: str | None
    ) -> str | None:
        """Log the model (weights + config) into this run; register it if a name is given (see models.py).
        Not held against Ctrl-C as a whole: it takes seconds, and MLflow's own writes inside are short."""
        from pipeline.tracking import models

        return models.log_model(self.uri, self.run_id, model, model_cfg, registered_name)

    # -- lifecycle ------------------------------------------------------------------------------
    @ctrl_c_after_write()
    def open(self) -> None:
        """Mark the run as running (again): a later stage writes into it, or it is being resumed."""
        client(self.uri).update_run(self.run_id, status="RUNNING")

    @ctrl_c_after_write()
    def end(self, status: str = "FINISHED") -> None:
        client(self.uri).set_terminated(self.run_id, status=status)

    @ctrl_c_after_write()
    def end_if_running(self, status: str) -> None:
        """End a run left RUNNING by a process that was killed; a run that ended stays as it ended."""
        c = client(self.uri)
        if c.get_run(self.run_id).info.status == "RUNNING":
            c.set_terminated(self.run_id, status=status)

    @ctrl_c_after_write()
    def delete(self) -> None:
        """Move the run to MLflow's trash (an empty sweep parent whose jobs went to another run)."""
        client(self.uri).delete_run(self.run_id)

    # -- reads ----------------------------------------------------------------------------------
    def get(self) -> MlflowRun:
        """The MLflow Run object (info, data.params, data.metrics, data.tags)."""
        return client(self.uri).get_run(self.run_id)

    def metric_history(self, key: str) -> list[float]:
        """Every value the run logged under the project's name `key`, in step order (runs logged before
        the names MLflow shows changed carry it under `key` itself)."""
        return [value for _, value in self.metric_points(key)]

    def metric_points(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of every value logged under `key`, in step order."""
        c = client(self.uri)
        history = c.get_metric_history(self.run_id, mlflow_name(key)) or c.get_metric_history(self.run_id, key)
        return [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)]

    def logged_model_id(self) -> str | None:
        """The id of the model this run logged (MLflow 3's LoggedModel, `m-...`); None when it logged none."""
        outputs = self.get().outputs
        found = [o.model_id for o in (outputs.model_outputs if outputs else [])]
        return found[-1] if found else None

    def download_artifact(self, artifact_path: str) -> Path:
        """A local copy of one artifact of the run."""
        from mlflow.artifacts import download_artifacts

        return Path(download_artifacts(run_id=self.run_id, artifact_path=artifact_path, tracking_uri=self.uri))

    def json_artifact(self, artifact_path: str) -> Any | None:
        """A JSON artifact of the run, read; None when the run has none there (it ended before logging it)."""
        from mlflow.exceptions import MlflowException

        try:
            return json.loads(self.download_artifact(artifact_path).read_text())
        except (MlflowException, OSError, ValueError):
            return None


def _lost_insert_race(err: BaseException) -> bool:
    """A unique-key violation, as SQLite and PostgreSQL word it (directly or through a tracking server)."""
    text = str(err).lower()
    return "unique constraint" in text or "duplicate key" in text


def end_status(err: BaseException | None) -> str:
    """The true final status of a run: Ctrl-C or SIGTERM -> KILLED, an error -> FAILED."""
    if err is None:
        return "FINISHED"
    return "KILLED" if isinstance(err, (KeyboardInterrupt, SystemExit)) else "FAILED"


@contextlib.contextmanager
def recording(run: Run, reopen: bool = True) -> Iterator[Run]:
    """Open `run` (RUNNING), let the caller write into it, then close it with its true status.

    Every stage that writes into a run does so inside this block, so no run is left
    RUNNING and none is written to after it ended.
    """
    if reopen:
        run.open()
    try:
        yield run
    except BaseException as err:
        run.end(end_status(err))
        raise
    run.end("FINISHED")


def experiment_id(mlflow_client: MlflowClient, name: str, uri: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        mark_training_experiment(mlflow_client, found)
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(
            name, artifact_location=artifact_location(uri), tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except Exception:  # another process created it in between
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        mark_training_experiment(mlflow_client, found)
        return found.experiment_id


def mark_training_experiment(mlflow_client: MlflowClient, experiment: Experiment) -> None:
    """Tag an existing experiment (made before the tag existed) as one of training runs; a kind
    someone chose in the UI is left alone."""
    if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
        mlflow_client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


@ctrl_c_after_write()
def create_run(uri: str, experiment: str, name: str, tags: Mapping[str, str]) -> Run:
    """A new run in the named experiment (created on first use)."""
    from pipeline.tracking import once

    c = client(uri)
    created = once.create_run(c, uri, experiment_id(c, experiment, uri), name, tags)
    return Run(uri, created.info.run_id)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@ctrl_c_after_write()
def start_run(
    cfg: DictConfig, command: str, overrides: list[str] | None = None, parent_run_id: str | None = None
) -> Run:
    """Create the pipeline's run: name, description, tags, params and the config file.

    `parent_run_id` makes it a child of a sweep's parent run (see sweeps.py).
    """
    from mlflow.entities import Param
    from omegaconf import OmegaConf

    tags = {
        "mlflow.runName": run_name(cfg),
        "mlflow.note.content": f"Reproduce with:\n\n    {command}",
        "model": cfg.model.name,
        "seed": str(cfg.seed),
        "dvc.stage": os.environ.get("DVC_STAGE", "none"),
        "hydra.overrides": " ".join(overrides or []) or "none",
        **git_state(),
        **system_tags(command),
    }
    tags.update(hydra_tags())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("SLURM_JOB_ID"):  # a SLURM job: find its files and accounting by this id
        tags["slurm.job_id"] = os.environ["SLURM_JOB_ID"]
    if parent_run_id:  # a job of a Hydra sweep
        tags["mlflow.parentRunId"] = parent_run_id
    run = create_run(resolve_uri(cfg.tracking.uri), cfg.tracking.experiment, tags["mlflow.runName"], tags)
    c = client(run.uri)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    params = [Param(k, str(v)[:6000]) for k, v in flatten(cast(dict[str, Any], resolved)).items()]
    for i in range(0, len(params), 100):  # log_batch takes at most 100 params a call
        c.log_batch(run.run_id, params=params[i : i + 100])
    c.log_text(run.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return run


def start_report_run(cfg: DictConfig) -> Run:
    """A run for a rendered report, in a sibling experiment: reports are not models,
    and stay out of the runs people compare."""
    return create_run(
        resolve_uri(cfg.tracking.uri),
        f"{cfg.tracking.experiment}-reports",
        "report",
        {"report": "claims", "mlflow.note.content": "Reproduce with:\n\n    dvc repro report", **git_state()},
    )
