"""The layer rules of docs/architecture.md, read from the sources: a package is a layer, imports point down.

Every import counts (module top, inside functions, under `if TYPE_CHECKING`), and so does a
string that names a project module (what `importlib.import_module` is given).
"""

from __future__ import annotations

import ast

import pytest
from code_graph import PROJECT, SRC, imported_modules, module_file, module_name

# From the bottom up: a module may import its own layer and the layers below it. A rule is a
# prefix: `pipeline.nn` holds pipeline.nn and everything under it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("shared plumbing: atomic writes, figures, metric names", ("pipeline.common",)),
    ("plain torch and files: networks, MNIST", ("pipeline.nn", "pipeline.data", "pipeline.packaged_model")),
    ("robustness measures: tensors in, tensors out", ("pipeline.robustness",)),
    ("classical classifiers: scikit-learn estimators built from settings", ("pipeline.classical",)),
    ("configuration: conf/ composed and checked", ("pipeline.config",)),
    ("the one door to MLflow", ("pipeline.tracking",)),
    ("Lightning glue", ("pipeline.training",)),
    ("claims and sweep results", ("pipeline.claims",)),
    ("entry points: every stage and command", ("pipeline.stages",)),
    ("Hydra plugins", ("hydra_plugins",)),
]
# The pure layers stay usable without the training, tracking and configuration stack.
PURE = (
    "pipeline.common",
    "pipeline.nn",
    "pipeline.data",
    "pipeline.robustness",
    "pipeline.classical",
    "pipeline.packaged_model",
)
FRAMEWORKS = ("lightning", "pytorch_lightning", "mlflow", "hydra", "omegaconf", "pipeline.config", "pipeline.tracking")
SOURCES = sorted(SRC.rglob("*.py"))


def _is(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> int | None:
    if module == "pipeline":
        return 0
    found = [i for i, (_, prefixes) in enumerate(LAYERS) if _is(module, prefixes)]
    return found[0] if found else None


def named_modules(path) -> set[str]:
    """Project modules named in string constants ("pipeline.stages.data" or "pipeline.stages.data:run")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = node.value.partition(":")[0]
            if _is(name, ("pipeline", "hydra_plugins")) and " " not in name and module_file(name) is not None:
                names.add(name)
    return names


def project_imports(path, named: bool = True) -> set[str]:
    """The project modules a file imports or (with `named`) names, resolved to module files."""
    found = imported_modules(path) | (named_modules(path) if named else set())
    return {module_name(module_file(m)) for m in found if module_file(m) is not None} - {module_name(path)}


def imports_at_run_time(path) -> set[str]:
    """What a file imports, with the modules it names only where it imports by name (importlib)."""
    return project_imports(path, named="importlib" in imported_modules(path))


def test_every_module_has_a_layer():
    unplaced = [module_name(p) for p in SOURCES if layer_of(module_name(p)) is None]
    assert not unplaced, f"place these modules in a layer (tests/test_layers.py, docs/architecture.md): {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_layer_above_it(path):
    own = layer_of(module_name(path))
    upward = sorted(m for m in project_imports(path) if layer_of(m) > own)
    assert not upward, f"{module_name(path)} ({LAYERS[own][0]}) imports a layer above it: {upward}"


def test_the_layer_test_sees_function_level_imports_and_importlib_strings(tmp_path):
    # The stage order names the stages a Hydra job imports by name; naming counts as importing.
    order = SRC / "pipeline" / "stages" / "order.py"
    assert "pipeline.stages.evaluate" in project_imports(order)
    assert "pipeline.stages.evaluate" not in imported_modules(order)
    # A function-level import counts like any other.
    builders = SRC / "pipeline" / "nn" / "builders.py"
    assert "pipeline.nn.models" in project_imports(builders)
    assert layer_of("pipeline.stages.train") > layer_of("pipeline.tracking.runs") > layer_of("pipeline.nn.models")


def test_package_inits_hold_only_their_docstring():
    """An __init__ runs for every module of its package (and is part of every DVC stage that imports one)."""
    for init in SRC.rglob("__init__.py"):
        if init.parent.parent == SRC / "hydra_plugins":
            continue  # Hydra finds the sweeper through its package
        body = ast.parse(init.read_text()).body
        assert body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), init
        assert len(body) == 1, f"{init.relative_to(SRC)}: keep a package's __init__ to its docstring"


def test_no_import_cycle():
    graph = {module_name(p): imports_at_run_time(p) for p in SOURCES}
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, f"import cycles (function-level imports included): {cycles}"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules by concern: {long}"


def test_pure_layers_import_no_framework():
    pure = [p for p in SOURCES if _is(module_name(p), PURE)]
    assert SRC / "pipeline" / "nn" / "models.py" in pure and SRC / "pipeline" / "robustness" / "attacks.py" in pure
    offenders = {module_name(p): [m for m in imported_modules(p) if _is(m, FRAMEWORKS)] for p in pure}
    assert not {k: v for k, v in offenders.items() if v}


def test_plotting_does_not_import_robustness_code():
    plots = SRC / "pipeline" / "common" / "plots.py"
    assert not [m for m in imported_modules(plots) if _is(m, ("pipeline.robustness",))]


def test_only_tracking_imports_mlflow():
    files = SOURCES + sorted((PROJECT / "benchmarks").rglob("*.py"))
    importers = sorted(
        str(p.relative_to(PROJECT)) for p in files if any(_is(m, ("mlflow",)) for m in imported_modules(p))
    )
    outside = [f for f in importers if not f.startswith("src/pipeline/tracking/")]
    # The bare baseline script imports MLflow's store only to time the import (`--import-stack`).
    assert outside == ["benchmarks/bare_train.py"]
    assert any(f.startswith("src/pipeline/tracking/") for f in importers)
