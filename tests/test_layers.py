"""The layer rules of docs/architecture.md, read from the sources: an import points down, never up."""

from __future__ import annotations

import pytest
from code_graph import PROJECT, SRC, imported_modules, module_file, module_name

# From the bottom up; a module may import its own layer and the layers below it.
LAYERS = [
    (
        "pure torch: tensors in, tensors out; names",
        {
            "pipeline",
            "pipeline.calibration",
            "pipeline.metrics",
            "pipeline.metric_names",
            "pipeline.images",
            "pipeline.models",
            "pipeline.builders",
            "pipeline.packaged_model",
            "pipeline.collapse",
            "pipeline.idx",
            "pipeline.robustness",
            "pipeline.robustness._utils",
            "pipeline.robustness.names",
            "pipeline.robustness.attacks",
            "pipeline.robustness.corruptions",
            "pipeline.robustness.ood",
            "pipeline.robustness.autoattack",
            "pipeline.robustness.trades",
            "pipeline.robustness.literature",
            "pipeline.robustness.mnist_c_files",
        },
    ),
    (
        "files, figures, configuration",
        {
            "pipeline.config",
            "pipeline.data",
            "pipeline.startup",
            "pipeline.lean_import",
            "pipeline.library_notices",
            "pipeline.plots",
            "pipeline.filters",
            "pipeline.resume",
            "pipeline.stages",
            "pipeline.atomic",
            "pipeline.interrupts",
            "pipeline.store",
        },
    ),
    ("the one door to MLflow", {"pipeline.tracking"}),
    (
        "Lightning glue and the registry",
        {
            "pipeline.module",
            "pipeline.datamodule",
            "pipeline.callbacks",
            "pipeline.checkpoint_io",
            "pipeline.robust_guard",
            "pipeline.sweep_ddp",
            "pipeline.registry",
        },
    ),
    (
        "stage entries: compute, then record",
        {
            "pipeline.train",
            "pipeline.evaluate",
            "pipeline.robustness.stage",
            "pipeline.robustness.__main__",
            "pipeline.robustness.remedy",
            "pipeline.predict",
            "pipeline.ui",
        },
    ),
    (
        "many runs at once",
        {
            "pipeline.results",
            "pipeline.claims",
            "pipeline.sweep",
            "pipeline.report",
            "hydra_plugins.pipeline_optuna_sweeper",
            "hydra_plugins.pipeline_optuna_sweeper.sweeper",
            "hydra_plugins.pipeline_optuna_sweeper.config",
        },
    ),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}
SOURCES = sorted(SRC.rglob("*.py"))
# The pure layer must stay usable without the training, tracking and configuration stack.
FRAMEWORKS = ("lightning", "pytorch_lightning", "mlflow", "hydra", "omegaconf", "pipeline.config", "pipeline.tracking")


def _project_imports(path):
    return sorted(m for m in imported_modules(path) if m.startswith("pipeline") and module_file(m) is not None)


def _is(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in SOURCES if module_name(p) not in LAYER_OF]
    assert not unplaced, f"place these modules in a layer (tests/test_layers.py, docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_layer_above_it(path):
    own = LAYER_OF[module_name(path)]
    upward = [m for m in _project_imports(path) if LAYER_OF[module_name(module_file(m))] > own]
    assert not upward, f"{module_name(path)} ({LAYERS[own][0]}) imports a layer above it: {upward}"


def test_models_and_robustness_code_import_no_framework():
    pure = [p for p in SOURCES if LAYER_OF[module_name(p)] == 0]
    assert SRC / "pipeline" / "models.py" in pure and SRC / "pipeline" / "robustness" / "attacks.py" in pure
    offenders = {module_name(p): [m for m in imported_modules(p) if _is(m, FRAMEWORKS)] for p in pure}
    assert not {k: v for k, v in offenders.items() if v}


def test_plotting_does_not_import_robustness_code():
    assert not [m for m in imported_modules(SRC / "pipeline" / "plots.py") if _is(m, ("pipeline.robustness",))]


def test_only_tracking_imports_mlflow():
    files = SOURCES + sorted((PROJECT / "benchmarks").rglob("*.py"))
    importers = sorted(
        str(p.relative_to(PROJECT)) for p in files if any(_is(m, ("mlflow",)) for m in imported_modules(p))
    )
    # The bare baseline script imports MLflow's store only to time the import (`--import-stack`).
    assert importers == ["benchmarks/bare_train.py", "src/pipeline/tracking.py"]
