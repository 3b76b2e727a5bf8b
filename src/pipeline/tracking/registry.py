"""The model registry: what it holds (plain values in and out) and which registered version is the champion.

Every single training run registers its model as `mnist-<model>` (see Run.log_model;
sweep jobs only with tracking.register_sweep_jobs=true).
After each evaluation, `update_champion` gives the alias `champion` to the
version whose run has the best validation accuracy (`val/best_acc`, logged by
training) among all versions of that registered model, so
`models:/mnist-mlp@champion` always names the best one by validation. The test
split never selects: test/acc only reports.

    python -m pipeline.stages.registry                     # every registered model: versions, val/best_acc, aliases
    python -m pipeline.stages.registry mnist-mlp --update  # recompute the champion of mnist-mlp
    python -m pipeline.stages.predict digit.png --model models:/mnist-mlp@champion

In Python, any registered version is an ordinary nn.Module (eval mode, CPU):

    from pipeline.tracking.registry import load_model
    model = load_model("models:/mnist-mlp@champion")   # or models:/mnist-mlp/3, runs:/<id>/model

Ties go to the older version (a champion is not replaced by an equal). Versions
whose run has no val/best_acc (training never finished) or whose run was deleted
do not compete.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pipeline.common.metric_names import VAL_BEST_ACC, mlflow_name
from pipeline.tracking.client import client, resolve_uri
from pipeline.tracking.interrupts import ctrl_c_after_write

ALIAS = "champion"
METRIC = mlflow_name(VAL_BEST_ACC)  # validation chooses; the test split only reports


def load_model(model_uri: str, tracking_uri: str | None = None):
    """A logged or registered model as an nn.Module in eval mode: weights + config, rebuilt by
    models.build_model and read with weights_only=True (pipeline.nn.packaged). Versions logged
    before that format (torch.export programs) come back as MLflow loads them."""
    import tempfile

    import yaml

    from pipeline.nn import packaged as packaged_model
    from pipeline.tracking import models, serving

    uri = resolve_uri(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        folder = models.download_model(uri, model_uri, tmp)
        flavors = yaml.safe_load((folder / "MLmodel").read_text()).get("flavors", {})
        pyfunc = flavors.get("python_function", {})
        if pyfunc.get("loader_module") in serving.LOADER_MODULES:
            return packaged_model.load(folder / pyfunc["data"])
        if "pytorch" in flavors:
            return models.load_exported_model(folder)
    raise ValueError(f"{model_uri} is not a model this pipeline logged (flavors: {', '.join(flavors) or 'none'}).")


# -- what the registry holds ----------------------------------------------------------------------


def registered_model_names(uri: str) -> list[str]:
    return sorted(m.name for m in client(uri).search_registered_models())


def _registered(uri: str, name: str):
    """The registered model (aliases, tags); None when no model of that name is registered."""
    try:
        return client(uri).get_registered_model(name)
    except Exception:  # RESOURCE_DOES_NOT_EXIST (or a store that cannot answer)
        return None


def _aliases(model) -> dict[str, int]:
    return {alias: int(version) for alias, version in (model.aliases or {}).items()}


def _pinned(model) -> int | None:
    tags = model.tags or {}
    return int(tags[PINNED_TAG]) if PINNED_TAG in tags else None


def model_aliases(uri: str, name: str) -> dict[str, int] | None:
    """alias -> version of a registered model; None when no model of that name is registered."""
    model = _registered(uri, name)
    return None if model is None else _aliases(model)


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


# -- the champion -----------------------------------------------------------------------------------


def version_scores(uri: str, model_name: str, metric: str = METRIC) -> list[tuple[int, str, float]]:
    """(version, run_id, metric) for every version of `model_name` whose run carries the metric."""
    scores: list[tuple[int, str, float]] = []
    for version, run_id in model_versions(uri, model_name):
        value = active_run_metric(uri, run_id, metric) if run_id else None
        if run_id and value is not None:
            scores.append((version, run_id, value))
    return scores


PINNED_TAG = "champion.pinned"  # a registered model's tag: the version the user chose as champion


@dataclass(frozen=True)
class Champion:
    """The champion after a decision: its version and score, the version before, and why."""

    version: int
    value: float | None
    previous: int | None
    reason: str

    def line(self, name: str, alias: str = ALIAS) -> str:
        score = f" ({METRIC}={self.value:.4f})" if self.value is not None else ""
        if self.previous == self.version:
            return f"{name}@{alias} stays version {self.version}{score}: {self.reason}"
        before = f"version {self.previous}" if self.previous is not None else "none"
        return f"{name}@{alias}: {before} -> version {self.version}{score}: {self.reason}"


def pinned_version(uri: str, name: str) -> int | None:
    model = _registered(uri, name)
    return None if model is None else _pinned(model)


@ctrl_c_after_write()
def pin_champion(uri: str, name: str, version: int, alias: str = ALIAS) -> Champion:
    """The user's choice: `alias` on `version`, kept there until `update_champion(..., unpin=True)`."""
    versions = dict(model_versions(uri, name))
    if version not in versions:
        raise ValueError(f"{name} has no version {version} (versions: {', '.join(map(str, versions)) or 'none'})")
    previous = (model_aliases(uri, name) or {}).get(alias)
    c = client(uri)
    c.set_registered_model_alias(name, alias, str(version))
    c.set_registered_model_tag(name, PINNED_TAG, str(version))
    run_id = versions[version]
    value = active_run_metric(uri, run_id, METRIC) if run_id else None
    return Champion(version, value, previous, f"set by hand; kept until `pipeline-registry {name} --update`")


def update_champion(
    uri: str, model_name: str, alias: str = ALIAS, metric: str = METRIC, unpin: bool = False
) -> Champion | None:
    """Point `alias` at the version of `model_name` with the highest `metric`, unless the user pinned
    one (`unpin` lets validation choose again). None when the model is not registered or no version
    has the metric.
    """
    model = _registered(uri, model_name)
    if model is None:
        return None
    previous, pinned = _aliases(model).get(alias), _pinned(model)
    if unpin and pinned is not None:
        client(uri).delete_registered_model_tag(model_name, PINNED_TAG)
        pinned = None
    scores = version_scores(uri, model_name, metric)
    if pinned is not None:
        value = next((s[2] for s in scores if s[0] == pinned), None)
        return Champion(pinned, value, previous, f"pinned by hand (`pipeline-registry {model_name} --update` unpins)")
    if not scores:
        return None
    version, _, value = max(scores, key=lambda s: (s[2], -s[0]))
    if previous != version:
        set_model_alias(uri, model_name, alias, version)
    return Champion(version, value, previous, f"the best {metric} of {len(scores)} version(s)")


def after_evaluation(uri: str, model_name: str) -> Champion | None:
    """Called by the evaluate stage once the model's run is complete: move the champion alias if need be,
    saying so in one line.

    A failure here (a registry that refuses aliases, a network error) is reported, not raised:
    the evaluation itself succeeded and is recorded.
    """
    try:
        found = update_champion(uri, model_name)
    except Exception as err:
        print(f"[evaluate] warning: could not update alias {ALIAS!r} of {model_name}: {err}", file=sys.stderr)
        return None
    if found:
        print(f"[evaluate] {found.line(model_name)}", flush=True)
    return found
