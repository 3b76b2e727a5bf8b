"""What code a module runs: its import closure inside the project, read from the source (no imports).

Every `import` statement counts, wherever it stands (module top, inside functions,
under `if`), so a function-level import is part of the closure like any other.
Shared by the DVC graph tests, the layer-rule tests and scripts/update-dvc-deps.py.

One kind of module is left out of every closure: those in OUTPUT_ONLY, which change only what a
command prints (a log or warning filter), never a file a stage writes. Were they DVC dependencies,
editing a log filter would retrain the model. tests/test_dvc_graph.py holds each to that: it imports
nothing but logging and warnings, and only a stage's entry-point module (one with main()) imports it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SRC = PROJECT / "src"

#: Modules that change only a command's printed output; no DVC stage depends on them (see above).
OUTPUT_ONLY = frozenset({"pipeline.stages.library_notices"})


def module_file(name: str) -> Path | None:
    """pipeline.stages.robustness -> src/pipeline/stages/robustness.py (None if not a project module)."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """src/pipeline/common/plots.py -> pipeline.common.plots; benchmarks/run.py -> benchmarks.run."""
    root = SRC if path.is_relative_to(SRC) else PROJECT
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _packages_of(name: str) -> list[str]:
    """pipeline.stages.robustness -> [pipeline, pipeline.stages]: importing it runs their __init__."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def imported_modules(path: Path) -> frozenset[str]:
    """Every module name a file's import statements name (project or not), relative ones resolved."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from pipeline.common import plots` imports the submodule pipeline.common.plots
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return frozenset(found)


def project_imports(path: Path) -> set[Path]:
    """The project files a file imports directly, with the package __init__ files those imports run."""
    files = set()
    for name in imported_modules(path):
        target = module_file(name)
        if target is None:
            continue
        files.add(target)
        files.update(f for f in map(module_file, _packages_of(name)) if f is not None)
    return files


def closure(entry_module: str) -> set[Path]:
    """Every project file `python -m entry_module` can run, less the OUTPUT_ONLY modules."""
    start = module_file(entry_module)
    assert start is not None, f"{entry_module} is not a module under {SRC}"
    if start.name == "__init__.py" and (start.parent / "__main__.py").is_file():
        start = start.parent / "__main__.py"  # `python -m package` runs package/__main__.py
    todo = {start, *(f for f in map(module_file, _packages_of(module_name(start))) if f is not None)}
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo |= {f for f in project_imports(path) if module_name(f) not in OUTPUT_ONLY} - seen
    return seen
