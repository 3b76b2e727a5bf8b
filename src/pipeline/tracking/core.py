"""MLflow: the one place that knows the store, runs, names, tags and artifacts.

Store: `tracking.uri` if set, else $MLFLOW_TRACKING_URI, else a SQLite database
`mlflow.db` in the project root with artifacts in `mlartifacts/` beside it
(MLflow 3 no longer accepts a bare file store by default). The project root is
the working directory, or $DVC_ROOT under DVC: queued experiments run in
temporary copies of the repository, and their runs belong in the same store.

One run per pipeline execution: training creates it and writes its id to
`<run_dir>/run.json`; evaluation and later stages log into the same run. The
store and the id travel together as a `Run`; a stage writes into it inside
`recording(run)`, which closes it with its true status (FINISHED, FAILED, KILLED).
This is the only module that imports mlflow (tests/test_layers.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipeline.tracking.interrupts import ctrl_c_after_write

if TYPE_CHECKING:
    import torch
    from mlflow import MlflowClient
    from mlflow.entities import Experiment
    from mlflow.entities import Run as MlflowRun
    from omegaconf import DictConfig

# No usage reports leave the machine (and none can: runs are often offline).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Progress bars for artifact downloads only clutter logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"
RUN_REF = "run.json"
# A sweep's parent run id reaches its jobs through the environment (the joblib launcher's
# worker processes inherit it); only announce_sweep_parent/sweep_parent_id touch it.
_SWEEP_PARENT_ENV = "PIPELINE_PARENT_RUN_ID"


def resolve_uri(configured: str | None = None) -> str:
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return f"sqlite:///{(root / DB_NAME).resolve()}"


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite database; servers decide for themselves."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return (db.parent / ARTIFACTS_NAME).resolve().as_uri()
    return None


@functools.cache
def client(uri: str) -> MlflowClient:
    """One client per store and process: building one costs seconds (it loads the store's plugins)."""
    from mlflow.tracking import MlflowClient

    check_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_checked_stores: set[str] = set()


def check_store(uri: str) -> None:
    """Once per process: stop on a damaged SQLite store, back it up when due, and back it
    up before migrating an older MLflow schema (MLflow would refuse it otherwise). See store.py."""
    from pipeline.tracking import store

    db = store.sqlite_path(uri)
    if uri in _checked_stores or db is None:
        return
    store.guard(db)
    if db.is_file() and db.stat().st_size:
        _migrate_with_backup(db, uri)
    _checked_stores.add(uri)


def _migrate_with_backup(db: Path, uri: str) -> None:
    import mlflow

    from pipeline.tracking import store

    found = store.schema_version(db)
    # The head revision costs ~25 ms to compute: remember it per MLflow version beside the backups.
    known = store.backup_dir(db) / f".schema-head-{mlflow.__version__}"
    head = known.read_text().strip() if known.is_file() else None
    if found is None or found == head:
        return
    from mlflow.store.db import utils as db_utils

    head = db_utils._get_latest_schema_revision()  # type: ignore[no-untyped-call]  # MLflow leaves it unannotated
    if found != head:
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(db_utils._get_alembic_config(db_url=""))  # type: ignore[no-untyped-call]  # unannotated
        if found not in {s.revision for s in scripts.walk_revisions()}:
            raise store.damaged(
                db,
                f"has MLflow schema {found}, which MLflow {mlflow.__version__} does not know "
                f"(a newer MLflow wrote it): upgrade MLflow, or restore a backup",
            )
        saved = store.backup(db, f"before-schema-{head}")
        print(
            f"[store] {db}: schema {found} -> {head} (MLflow {mlflow.__version__}); backup first: {saved}",
            file=sys.stderr,
            flush=True,
        )
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)
        try:
            db_utils._upgrade_db(engine)  # type: ignore[no-untyped-call]  # unannotated in MLflow
        finally:
            engine.dispose()
    try:
        known.parent.mkdir(parents=True, exist_ok=True)
        known.write_text(head + "\n")
    except OSError:  # a read-only folder: the head is computed again next time, nothing worse
        pass


# The MLflow UI (3.x) opens an experiment on the page its kind names; without the tag it
# guesses, and an experiment with no traces lands on the GenAI overview. These are training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


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


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


# Files DVC writes while `dvc repro` runs (the lock between stages, the parameters `dvc exp run -S`
# composes, the outputs stages track in git): their changes do not make the code dirty.
DVC_MANAGED = ("dvc.lock", "params.yaml")


def dvc_managed_paths(root: str | Path = ".") -> set[str]:
    """DVC_MANAGED plus every `outs`/`metrics`/`plots` path of dvc.yaml, with ${...} resolved from params.yaml."""
    import re

    import yaml

    root = Path(root)
    paths = set(DVC_MANAGED)
    try:
        stages = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})
        params = yaml.safe_load((root / "params.yaml").read_text()) or {} if (root / "params.yaml").is_file() else {}
    except (OSError, yaml.YAMLError):
        return paths

    def resolve(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            node = params
            for part in match.group(1).split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            return str(node) if node != {} else match.group(0)

        return re.sub(r"\$\{([^}]+)\}", value, text)

    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []) or []:
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                paths.add(resolve(str(path)).rstrip("/"))
    return paths


def _is_dvc_managed(path: str, managed: set[str]) -> bool:
    return any(path == m or path.startswith(m + "/") for m in managed)


def git_state() -> dict[str, str]:
    """The commit the code came from, as MLflow's own tags and ours; `git.dirty` ignores files DVC manages."""

    def git(*args: str, strip: bool = True) -> str:
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.strip() if strip else out

    # The working directory's repository (DVC's queue runs in copies of it), else the one this code lives in.
    top = git("rev-parse", "--show-toplevel") or git("-C", str(Path(__file__).parent), "rev-parse", "--show-toplevel")
    commit = git("-C", top, "rev-parse", "HEAD") if top else ""
    if not commit:
        return {"git.commit": "unknown", "git.dirty": "false"}
    managed = dvc_managed_paths(top)
    # -z: paths verbatim (no quoting); each entry is "XY path" (renames add the old path after a NUL).
    changed = [
        entry[3:]
        for entry in git("-C", top, "status", "--porcelain", "-z", "--untracked-files=no", strip=False).split("\0")
        if len(entry) > 3
    ]
    dirty = any(not _is_dvc_managed(p, managed) for p in changed)
    tags = {"git.commit": commit, "git.dirty": str(dirty).lower(), "mlflow.source.git.commit": commit}
    branch = git("-C", top, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        tags["mlflow.source.git.branch"] = branch
    return tags


def system_tags(command: str) -> dict[str, str]:
    """The tags MLflow's own fluent API sets on a run (the UI's User and Source columns)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    # The UI's Source column shows the last path component of the name: the program, without its
    # arguments (paths among them would show as "mlflow.db ..."); the full command is in the description.
    program = []
    for word in command.split("  #")[0].split():
        if "=" in word or "/" in word:
            break
        program.append(word)
    return {
        "mlflow.user": user,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": " ".join(program)[:500] or "pipeline",
    }


def run_name(cfg: DictConfig) -> str:
    """Readable in the UI's run list: model, its key settings, optimiser, time."""
    m = cfg.model
    if m.arch == "mlp":
        shape = f"{'x'.join(str(h) for h in m.hidden)}-{m.activation}"
    else:
        shape = "c" + "x".join(str(c) for c in m.channels)
    adversarial = cfg.get("adversarial", {}).get("method", "none")
    if adversarial != "none":
        shape += f"-adv{adversarial}{cfg.adversarial.eps:g}"
    return f"{m.name}-{shape}-{cfg.optim.name}{cfg.optim.lr:g}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def _hydra_tags() -> dict[str, str]:
    """The `experiment=<preset>` of the running Hydra app and, in a sweep, the job's number."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    tags = {}
    if hydra_cfg.runtime.choices.get("experiment"):
        tags["preset"] = hydra_cfg.runtime.choices["experiment"]
    if hydra_cfg.mode == RunMode.MULTIRUN:
        tags["sweep.job"] = str(hydra_cfg.job.num)
    return tags


@ctrl_c_after_write()
def start_run(
    cfg: DictConfig, command: str, overrides: list[str] | None = None, parent_run_id: str | None = None
) -> tuple[str, str]:
    """Create the pipeline's run: name, description, tags, params and the config file.

    `parent_run_id` makes it a child of a sweep's parent run. Returns (run_id, tracking_uri).
    """
    from mlflow.entities import Param
    from omegaconf import OmegaConf

    uri = resolve_uri(cfg.tracking.uri)
    c = client(uri)
    exp = experiment_id(c, cfg.tracking.experiment, uri)
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
    tags.update(_hydra_tags())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("SLURM_JOB_ID"):  # a SLURM job: find its files and accounting by this id
        tags["slurm.job_id"] = os.environ["SLURM_JOB_ID"]
    if parent_run_id:  # a job of a Hydra sweep (see sweep.py)
        tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(exp, run_name=tags["mlflow.runName"], tags=tags)
    run_id = run.info.run_id
    resolved = OmegaConf.to_container(cfg, resolve=True)
    params = [Param(k, str(v)[:6000]) for k, v in flatten(cast(dict[str, Any], resolved)).items()]
    for i in range(0, len(params), 100):  # log_batch takes at most 100 params a call
        c.log_batch(run_id, params=params[i : i + 100])
    c.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return run_id, uri


@ctrl_c_after_write()
def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
    c = client(uri)
    for i in range(0, len(batch), 1000):
        c.log_batch(run_id, metrics=batch[i : i + 1000])


@ctrl_c_after_write()
def log_params(uri: str, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    client(uri).log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


@ctrl_c_after_write()
def log_artifact(uri: str, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client(uri).log_artifact(run_id, str(path), artifact_path)


@ctrl_c_after_write()
def reopen_run(uri: str, run_id: str) -> None:
    """Mark an interrupted run as running again (it is being resumed)."""
    client(uri).update_run(run_id, status="RUNNING")


@ctrl_c_after_write()
def log_failure(uri: str, run_id: str, message: str) -> None:
    """Why a run failed, shown as its `failure` tag in the UI."""
    client(uri).set_tag(run_id, "failure", message[:5000])


@ctrl_c_after_write()
def end_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(uri).set_terminated(run_id, status=status)


@ctrl_c_after_write()
def end_run_if_running(uri: str, run_id: str, status: str) -> None:
    """End a run left RUNNING by a process that was killed; a run that ended stays as it ended."""
    c = client(uri)
    if c.get_run(run_id).info.status == "RUNNING":
        c.set_terminated(run_id, status=status)


@ctrl_c_after_write()
def set_tags(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    client(uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


@ctrl_c_after_write()
def delete_run(uri: str, run_id: str) -> None:
    """Move a run to MLflow's trash (an empty sweep parent whose jobs went to another run)."""
    client(uri).delete_run(run_id)


@ctrl_c_after_write()
def log_dataset(
    uri: str,
    run_id: str,
    name: str,
    digest: str,
    source: Mapping[str, Any],
    profile: Mapping[str, Any],
    context: str = "training",
) -> None:
    """Record the data a run used as an MLflow dataset input (the UI's Dataset column)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(
        name=name, digest=digest, source_type="http", source=json.dumps(dict(source)), profile=json.dumps(dict(profile))
    )
    inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])]
    # MLflow looks the dataset row up, then inserts it: jobs starting together on a fresh experiment
    # race on that insert and all but one hit the unique key. The transaction rolled back, so a
    # retry finds the winner's row and only adds this run's input.
    for attempt in range(5):
        try:
            client(uri).log_inputs(run_id, datasets=inputs)
            return
        except Exception as err:
            if attempt == 4 or not _lost_insert_race(err):
                raise
            time.sleep(0.05 * (attempt + 1))


def _lost_insert_race(err: BaseException) -> bool:
    """A unique-key violation, as SQLite and PostgreSQL word it (directly or through a tracking server)."""
    text = str(err).lower()
    return "unique constraint" in text or "duplicate key" in text


@contextlib.contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (pyfunc.log_model, artifact downloads) at `uri` for one call.

    That API reads a process-wide store, and setting it also exports MLFLOW_TRACKING_URI and
    MLFLOW_REGISTRY_URI to every later subprocess: left set, a process that works with two
    stores (a test session, a notebook) would read the registry of the first in the second.
    Everything is put back afterwards.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved_tracking, saved_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]  # None: unset, as before
        mlflow.set_registry_uri(saved_registry)  # type: ignore[arg-type]
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _requirements_taken_as_installed() -> Iterator[None]:
    """Skip MLflow's check of a model's requirements against the installed packages for one call.

    log_model pins the installed versions, so the check cannot find a mismatch; it runs when the
    model is saved and again when MLflow loads it to validate the input example, and costs about
    0.75 s per process here (it first maps every installed package to its modules)."""
    from mlflow.utils import requirements_utils

    check = getattr(requirements_utils, "_check_requirement_satisfied", None)
    if check is None:  # an MLflow without this check: nothing to skip
        yield
        return
    requirements_utils._check_requirement_satisfied = lambda requirement_str: None
    try:
        yield
    finally:
        requirements_utils._check_requirement_satisfied = check


def log_model(
    uri: str, run_id: str, model: torch.nn.Module, model_cfg: Mapping[str, Any], registered_name: str | None
) -> str | None:
    """Log the model as weights + config (pipeline.nn.packaged, no pickled code); register it if a
    name is given. Returns the registered version, if any.

    A python_function model whose MLmodel names `pipeline.nn.packaged` as its loader: MLflow's
    pyfunc serves it, `pipeline.tracking.registry.load_model` returns the nn.Module. Requirements are given
    explicitly: MLflow would otherwise infer them by importing the model in a subprocess (seconds).
    """
    import tempfile
    from importlib.metadata import version as installed

    import mlflow.pyfunc
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    from pipeline.nn import packaged as packaged_model

    example = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        output = model.eval()(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    requirements = [f"{name}=={installed(name)}" for name in ("torch", "numpy", "mlflow")]
    with (
        fluent_store(uri),
        _requirements_taken_as_installed(),
        tempfile.TemporaryDirectory() as tmp,
        mlflow.start_run(run_id=run_id),
    ):
        data = packaged_model.save(model, model_cfg, Path(tmp) / "weights")
        info = mlflow.pyfunc.log_model(
            name="model",
            loader_module="pipeline.nn.packaged",
            data_path=str(data),
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=registered_name,
        )
    return str(info.registered_model_version) if registered_name else None


def download_model(uri: str, model_uri: str, dst: str | Path) -> Path:
    """Fetch a logged or registered model's folder (models:/name@alias, models:/name/3, runs:/id/model)."""
    import mlflow

    with fluent_store(uri):
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst)))


def load_exported_model(uri: str, model_uri: str) -> Any:
    """A model logged by earlier versions of this pipeline (mlflow.pytorch, torch.export format)."""
    import mlflow.pytorch

    with fluent_store(uri):
        return mlflow.pytorch.load_model(model_uri)


def write_run_ref(run_dir: str | Path, run_id: str, uri: str, **extra: Any) -> Path:
    path = Path(run_dir) / RUN_REF
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "tracking_uri": uri, **extra}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def best_checkpoint(run_dir: str | Path, ref: Mapping[str, Any]) -> Path:
    """The checkpoint a run.json names as best (the conventional place if it names none)."""
    return Path(ref.get("best_checkpoint") or Path(run_dir) / "checkpoints" / "best.ckpt")


def read_run_ref(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_REF
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train a model first (`dvc repro train` or "
            f"`python -m pipeline.stages.train run_dir={run_dir}`)."
        )
    ref: dict[str, Any] = json.loads(path.read_text())
    check_store(ref.get("tracking_uri", ""))  # before the stage computes for minutes, not after
    return ref


@dataclass(frozen=True)
class Run:
    """One MLflow run: where it is stored and its id, with the verbs the stages use."""

    uri: str
    run_id: str

    @classmethod
    def from_ref(cls, ref: Mapping[str, Any]) -> Run:
        """The run a run.json names (see read_run_ref)."""
        return cls(ref["tracking_uri"], ref["run_id"])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        log_metrics(self.uri, self.run_id, metrics, step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        log_params(self.uri, self.run_id, params)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        log_artifact(self.uri, self.run_id, path, artifact_path)

    @ctrl_c_after_write()
    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        client(self.uri).log_artifacts(self.run_id, str(folder), artifact_path)

    @ctrl_c_after_write()
    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        client(self.uri).log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_model(
        self, model: torch.nn.Module, model_cfg: Mapping[str, Any], registered_name: str | None
    ) -> str | None:
        return log_model(self.uri, self.run_id, model, model_cfg, registered_name)

    def log_dataset(
        self, name: str, digest: str, source: Mapping[str, Any], profile: Mapping[str, Any], context: str = "training"
    ) -> None:
        log_dataset(self.uri, self.run_id, name, digest, source, profile, context)

    def open(self) -> None:
        reopen_run(self.uri, self.run_id)

    def end(self, status: str = "FINISHED") -> None:
        end_run(self.uri, self.run_id, status)


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


def announce_sweep_parent(run_id: str | None) -> None:
    """Make `run_id` the parent of the runs this process and its workers start (None: no parent)."""
    if run_id:
        os.environ[_SWEEP_PARENT_ENV] = run_id
    else:
        os.environ.pop(_SWEEP_PARENT_ENV, None)


def sweep_parent_id() -> str | None:
    """The parent run of a sweep job, if this process runs one (see announce_sweep_parent)."""
    return os.environ.get(_SWEEP_PARENT_ENV) or None


@ctrl_c_after_write()
def start_sweep(config: DictConfig, name: str, tags: Mapping[str, str]) -> Run:
    """Create a sweep's parent run (which also creates the store and experiment once)."""
    uri = resolve_uri(config.tracking.uri)
    c = client(uri)
    experiment = experiment_id(c, config.tracking.experiment, uri)
    run = c.create_run(experiment, run_name=name, tags={**tags, **git_state()})
    return Run(uri, run.info.run_id)


def child_runs(uri: str, parent_run_id: str) -> list[MlflowRun]:
    """The runs whose parent is `parent_run_id` (a sweep's jobs), as MLflow Run objects."""
    c = client(uri)
    experiment = c.get_run(parent_run_id).info.experiment_id
    runs: list[MlflowRun] = c.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return runs


@ctrl_c_after_write()
def start_report_run(cfg: DictConfig) -> Run:
    """A run for a rendered report, in a sibling experiment: reports are not models,
    and stay out of the runs people compare."""
    uri = resolve_uri(cfg.tracking.uri)
    c = client(uri)
    experiment = experiment_id(c, f"{cfg.tracking.experiment}-reports", uri)
    run = c.create_run(
        experiment,
        run_name="report",
        tags={"report": "claims", "mlflow.note.content": "Reproduce with:\n\n    dvc repro report", **git_state()},
    )
    return Run(uri, run.info.run_id)


def download_artifact(uri: str, run_id: str, artifact_path: str) -> Path:
    """A local copy of one artifact of a run."""
    from mlflow.artifacts import download_artifacts

    return Path(download_artifacts(run_id=run_id, artifact_path=artifact_path, tracking_uri=uri))


def get_run(uri: str, run_id: str) -> MlflowRun:
    """The MLflow Run object (info, data.params, data.metrics, data.tags)."""
    return client(uri).get_run(run_id)


def metric_history(uri: str, run_id: str, key: str) -> list[float]:
    """Every value a run logged under `key`, in step order."""
    return [m.value for m in sorted(client(uri).get_metric_history(run_id, key), key=lambda m: m.step)]


# The model registry: plain values in and out (registry.py decides which version is the champion).


def registered_model_names(uri: str) -> list[str]:
    return sorted(m.name for m in client(uri).search_registered_models())


def model_aliases(uri: str, name: str) -> dict[str, int] | None:
    """alias -> version of a registered model; None when no model of that name is registered."""
    try:
        model = client(uri).get_registered_model(name)
    except Exception:  # RESOURCE_DOES_NOT_EXIST (or a store that cannot answer)
        return None
    return {alias: int(version) for alias, version in (model.aliases or {}).items()}


def model_versions(uri: str, name: str) -> list[tuple[int, str | None]]:
    """(version, run id) of every version of a registered model, oldest first."""
    found = client(uri).search_model_versions(f"name = '{name}'")
    return sorted((int(mv.version), mv.run_id or None) for mv in found)


def active_run_metric(uri: str, run_id: str, metric: str) -> float | None:
    """A run's latest value of `metric`; None when the run was deleted or never logged it."""
    try:
        run = client(uri).get_run(run_id)
    except Exception:  # the run was deleted for good
        return None
    if run.info.lifecycle_stage != "active" or metric not in run.data.metrics:
        return None
    return float(run.data.metrics[metric])


@ctrl_c_after_write()
def set_model_alias(uri: str, name: str, alias: str, version: int) -> None:
    client(uri).set_registered_model_alias(name, alias, str(version))
