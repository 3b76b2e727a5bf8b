"""MLflow: the one place that knows the store, runs, names, tags and artifacts.

Store: `tracking.uri` if set, else $MLFLOW_TRACKING_URI, else a SQLite database
`mlflow.db` in the project root with artifacts in `mlartifacts/` beside it
(MLflow 3 no longer accepts a bare file store by default). The project root is
the working directory, or $DVC_ROOT under DVC: queued experiments run in
temporary copies of the repository, and their runs belong in the same store.

One run per pipeline execution: training creates it and writes its id to
`<run_dir>/run.json`; evaluation and later stages log into the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping

# No usage reports leave the machine (and none can: runs are often offline).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Progress bars for artifact downloads only clutter logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"
RUN_REF = "run.json"


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
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / ARTIFACTS_NAME).resolve().as_uri()
    return None


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(mlflow_client, name: str, uri: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name, artifact_location=artifact_location(uri))
    except Exception:  # another process created it in between
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no") if commit else ""
    return {"git.commit": commit or "unknown", "git.dirty": str(bool(dirty)).lower()}


def run_name(cfg) -> str:
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


def start_run(cfg, command: str, overrides: list[str] | None = None) -> tuple[str, str]:
    """Create the pipeline's run: name, description, tags, params and the config file.

    Returns (run_id, tracking_uri).
    """
    from mlflow.entities import Param, RunTag
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
    }
    tags.update(_hydra_tags())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("PIPELINE_PARENT_RUN_ID"):  # a job of a Hydra sweep (see sweep.py)
        tags["mlflow.parentRunId"] = os.environ["PIPELINE_PARENT_RUN_ID"]
    run = c.create_run(exp, run_name=tags["mlflow.runName"], tags=tags)
    run_id = run.info.run_id
    resolved = OmegaConf.to_container(cfg, resolve=True)
    params = [Param(k, str(v)[:6000]) for k, v in flatten(resolved).items()]
    for i in range(0, len(params), 100):  # log_batch takes at most 100 params a call
        c.log_batch(run_id, params=params[i:i + 100])
    c.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    c.log_batch(run_id, tags=[RunTag("mlflow.source.name", command[:500])])
    return run_id, uri


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
    c = client(uri)
    for i in range(0, len(batch), 1000):
        c.log_batch(run_id, metrics=batch[i:i + 1000])


def log_params(uri: str, run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    client(uri).log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_artifact(uri: str, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client(uri).log_artifact(run_id, str(path), artifact_path)


def reopen_run(uri: str, run_id: str) -> None:
    """Mark an interrupted run as running again (it is being resumed)."""
    client(uri).update_run(run_id, status="RUNNING")


def end_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    client(uri).set_terminated(run_id, status=status)


def log_model(uri: str, run_id: str, model, registered_name: str | None) -> str | None:
    """Log a torch model as an MLflow model with a signature; register it if a name is given.

    Returns the registered version, if any.
    """
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    # Batch of 2: an exported graph would otherwise fix the batch size to 1.
    example = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with mlflow.start_run(run_id=run_id):
        # torch.export format (the default): a traced graph, not a pickle of Python code
        info = mlflow.pytorch.log_model(model, name="model", signature=signature, input_example=example,
                                        registered_model_name=registered_name)
    return str(info.registered_model_version) if registered_name else None


def write_run_ref(run_dir: str | Path, run_id: str, uri: str, **extra: Any) -> Path:
    path = Path(run_dir) / RUN_REF
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "tracking_uri": uri, **extra}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_run_ref(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_REF
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: train a model first (`dvc repro train` or "
            f"`python -m pipeline.train run_dir={run_dir}`)."
        )
    return json.loads(path.read_text())
