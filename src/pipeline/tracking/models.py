"""Model I/O: log a model into a run (and register it), fetch a logged or registered model's folder.

A model is logged as weights + config (pipeline.nn.packaged, no pickled code): a python_function
model whose MLmodel names `pipeline.tracking.serving` as its loader, so MLflow's pyfunc serves it
(images in, `digit` and `p0`..`p9` out) and `pipeline.tracking.registry.load_model` returns the nn.Module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (mlflow.start_run, pyfunc.log_model, model downloads) at `uri` for one call.

    That API reads a process-wide store, and setting it also exports MLFLOW_TRACKING_URI and
    MLFLOW_REGISTRY_URI to every later subprocess: left set, a process that works with two
    stores (a test session, a notebook) would read the registry of the first in the second.
    Afterwards the process-wide setting is cleared and both variables are put back as they
    were, so MLflow finds the store as it did before (a URI set with mlflow.set_tracking_uri
    also lives in the variable, and comes back through it).
    """
    import mlflow

    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None: unset, MLflow reads the variable again
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def log_model(
    uri: str, run_id: str, model: torch.nn.Module, model_cfg: Mapping[str, Any], registered_name: str | None
) -> str | None:
    """Log the model into the run; register it if a name is given. Returns the registered version, if any.

    Requirements are given explicitly: MLflow would otherwise infer them by importing the model
    in a subprocess (seconds). Called through Run.log_model.
    """
    import tempfile
    from importlib.metadata import version as installed

    import mlflow.pyfunc

    from pipeline.nn import packaged as packaged_model
    from pipeline.tracking import serving

    requirements = [f"{name}=={installed(name)}" for name in ("torch", "numpy", "pandas", "mlflow")]
    with fluent_store(uri), tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        data = packaged_model.save(model, model_cfg, Path(tmp) / "weights")
        info = mlflow.pyfunc.log_model(
            name="model",
            loader_module=serving.LOADER,
            data_path=str(data),
            signature=serving.signature(),
            input_example=serving.input_example(),
            pip_requirements=requirements,
            registered_model_name=registered_name,
        )
    return str(info.registered_model_version) if registered_name else None


def download_model(uri: str, model_uri: str, dst: str | Path) -> Path:
    """Fetch a logged or registered model's folder (models:/name@alias, models:/name/3, runs:/id/model)."""
    from mlflow.artifacts import download_artifacts

    # The URIs given here reach a runs:/ lookup, but MLflow 3 resolves the logged model behind it
    # (models:/m-...) through the process-wide registry: point that at the store too.
    with fluent_store(uri):
        return Path(download_artifacts(artifact_uri=model_uri, dst_path=str(dst), tracking_uri=uri, registry_uri=uri))


def load_exported_model(folder: str | Path) -> Any:
    """A downloaded model logged by earlier versions of this pipeline (mlflow.pytorch, torch.export format)."""
    import mlflow.pytorch

    return mlflow.pytorch.load_model(str(folder))
