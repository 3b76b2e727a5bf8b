"""Public library APIs only: no private name of the frameworks in src/, benchmarks/ or scripts/.

A private name (a leading underscore) of MLflow, Lightning, Hydra, OmegaConf, Optuna or DVC can
change or vanish in any release, and the code that used it breaks silently. Where no public route
exists, the name goes into ALLOWED below with the reason; a second test fails once an allowed name
is gone from the installed (pinned) version, so the workaround is revisited on that upgrade.

What counts as a use, read from the source (ast, nothing is imported):
- an import from a library module path with a component starting with "_" (`from mlflow._x import y`);
- an imported name starting with "_" (`from mlflow.utils import _helper`);
- an attribute starting with "_" (dunders aside) on a name an import bound from a library, or on an
  expression rooted in one (`lu._version`, `mlflow.tracking.fluent._active_run_stack`,
  `mlflow.get_run(r)._data`);
- getattr/setattr/hasattr/delattr or `monkeypatch.setattr` with a "_name" string on such an object,
  or with a dotted string target into a library that has a "_" component.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from code_graph import PROJECT

LIBRARIES = frozenset(
    {
        "mlflow",
        "lightning",
        "lightning_fabric",
        "pytorch_lightning",
        "lightning_utilities",
        "hydra",
        "omegaconf",
        "optuna",
        "dvc",
    }
)
SCANNED = ("src", "benchmarks", "scripts")

#: The one allowlist: dotted private name -> why no public route exists. Empty: none is needed.
ALLOWED: dict[str, str] = {}


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _library_path(dotted: str) -> bool:
    return dotted.split(".")[0] in LIBRARIES


def _chain(node: ast.expr) -> tuple[ast.expr, list[str]]:
    """`a.b().c[0].d` -> (Name a, ["b", "()", "c", "[]", "d"]): the root and the steps to it."""
    steps: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            steps.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            steps.append("()")
            node = node.func
        elif isinstance(node, ast.Subscript):
            steps.append("[]")
            node = node.value
        else:
            return node, steps[::-1]


def private_uses(source: str, filename: str = "<snippet>") -> list[str]:
    """The private library names `source` uses, as dotted names ("lightning_utilities.core.imports._version")."""
    tree = ast.parse(source, filename)
    bound: dict[str, str] = {}  # local name -> the library path it stands for
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _library_path(alias.name):
                    if any(map(_private, alias.name.split("."))):
                        found.append(alias.name)
                    local = alias.asname or alias.name.split(".")[0]
                    bound[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and _library_path(node.module):
            if any(map(_private, node.module.split("."))):
                found.append(node.module)
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.module}.{alias.name}")
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def rooted(expr: ast.expr) -> str | None:
        """The dotted name `expr` stands for, if it is rooted in a library name."""
        root, steps = _chain(expr)
        if isinstance(root, ast.Name) and root.id in bound:
            return ".".join([bound[root.id], *steps]).replace(".()", "()").replace(".[]", "[]")
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = rooted(node.value)
            if base is not None:
                found.append(f"{base}.{node.attr}")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name not in {"getattr", "setattr", "hasattr", "delattr"}:
                continue
            target, attr = node.args[0], node.args[1]
            if isinstance(target, ast.Constant) and isinstance(target.value, str):  # monkeypatch.setattr("a.b._c", v)
                if _library_path(target.value) and any(map(_private, target.value.split("."))):
                    found.append(target.value)
            elif isinstance(attr, ast.Constant) and isinstance(attr.value, str) and _private(attr.value):
                base = rooted(target)
                if base is not None:
                    found.append(f"{base}.{attr.value}")
        elif isinstance(node, ast.Call) and node.args and _is_import_module(node.func):
            arg = node.args[0]
            is_text = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if is_text and _library_path(arg.value) and any(map(_private, arg.value.split("."))):
                found.append(arg.value)
    return sorted(set(found))


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


def scanned_files() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (PROJECT / folder).rglob("*.py"))


def exists(dotted: str) -> bool:
    """Whether the installed packages still have `dotted` (a module, or an attribute path under one)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_no_private_library_name_outside_the_allowlist():
    offenders = {
        str(path.relative_to(PROJECT)): unlisted
        for path in scanned_files()
        if (unlisted := [n for n in private_uses(path.read_text(), str(path)) if n not in ALLOWED])
    }
    assert not offenders, (
        f"private names of {sorted(LIBRARIES)} (they break silently on an upgrade): {offenders}. "
        "Use a public route, or add the name to ALLOWED in tests/test_private_names.py with the reason."
    )


@pytest.mark.parametrize("name", sorted(ALLOWED) or [pytest.param(None, marks=pytest.mark.skip("none allowed"))])
def test_each_allowed_name_still_exists_in_the_installed_version(name):
    assert ALLOWED[name].strip(), f"{name} is allowed without a reason"
    assert exists(name), f"{name} is gone from the installed version: find the public route and drop it from ALLOWED"


def test_the_existence_check_can_fail():
    assert exists("json.decoder.JSONDecoder.decode") and exists("json.decoder")
    assert not exists("json.decoder.no_such_name") and not exists("no_such_package.x")


# Each snippet must be reported, so the scan above cannot pass by seeing nothing.
CAUGHT = {
    # lightning_utilities' availability checks swapped for a block (as a start-up trick once did)
    """
from lightning_utilities.core import imports as lu
real_version, real_check = lu._version, lu.RequirementCache._check_available
lu.RequirementCache._check_available = lambda cache: None
""": [
        "lightning_utilities.core.imports.RequirementCache._check_available",
        "lightning_utilities.core.imports._version",
    ],
    "from mlflow.utils.requirements_utils import _check_requirement_satisfied\n": [
        "mlflow.utils.requirements_utils._check_requirement_satisfied"
    ],
    "from mlflow.store.db import _utils\n": ["mlflow.store.db._utils"],
    "import mlflow._private.x as m\n": ["mlflow._private.x"],
    "import mlflow\nuri = mlflow.tracking._tracking_service.utils._tracking_uri\n": [
        "mlflow.tracking._tracking_service",
        "mlflow.tracking._tracking_service.utils._tracking_uri",
    ],
    "import mlflow\nstore = mlflow.MlflowClient()._tracking_client\n": ["mlflow.MlflowClient()._tracking_client"],
    "from hydra.core.hydra_config import HydraConfig\nx = getattr(HydraConfig, '_instance')\n": [
        "hydra.core.hydra_config.HydraConfig._instance"
    ],
    "def test(monkeypatch):\n    monkeypatch.setattr('optuna.study._optimize', None)\n": ["optuna.study._optimize"],
    "import importlib\nimportlib.import_module('dvc._debug')\n": ["dvc._debug"],
    "import omegaconf as oc\noc.OmegaConf._get_obj_type(1)\n": ["omegaconf.OmegaConf._get_obj_type"],
}
NOT_CAUGHT = """
import lightning as L
import torch
from mlflow import __version__
trainer = L.Trainer()
torch._dynamo.reset()            # torch is not among the libraries checked
x = object()._hidden             # nor is everything else
print(L.__version__, trainer.fit)
"""


@pytest.mark.parametrize("snippet", list(CAUGHT))
def test_the_scan_reports_each_kind_of_private_use(snippet):
    assert private_uses(snippet) == sorted(CAUGHT[snippet])


def test_the_scan_leaves_public_names_dunders_and_other_libraries_alone():
    assert private_uses(NOT_CAUGHT) == []
