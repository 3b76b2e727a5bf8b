"""dvc.yaml cannot go stale: every stage declares all the code it runs, and DVC sees an edit to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from code_graph import OUTPUT_ONLY, PROJECT, SRC, closure, imported_modules, module_file, module_name

from pipeline.stages import order as stages

DVC_YAML = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def _code_deps(stage: str) -> list[Path]:
    return [PROJECT / d for d in DVC_YAML[stage]["deps"] if str(d).startswith("src/")]


def _declared_files(stage: str) -> set[Path]:
    """The .py files dvc.yaml's code deps of `stage` cover (a folder covers everything under it)."""
    covered = set()
    for dep in _code_deps(stage):
        covered |= set(dep.rglob("*.py")) if dep.is_dir() else {dep}
    return covered


def _rel(paths) -> list[str]:
    return sorted(str(p.relative_to(PROJECT)) for p in paths)


def test_stage_order_and_commands_come_from_one_place():
    assert list(DVC_YAML) == list(stages.STAGES)
    for name, stage in DVC_YAML.items():
        assert stage["cmd"] == stages.command(name)


@pytest.mark.parametrize("stage", list(stages.STAGES))
def test_each_stage_declares_exactly_the_code_it_runs(stage):
    runs = closure(stages.STAGES[stage][0])
    declared = _declared_files(stage)
    missing, extra = runs - declared, declared - runs
    assert not missing, (
        f"dvc.yaml stage {stage!r} runs but does not declare (add to its deps): {_rel(missing)}; "
        f"`python scripts/update-dvc-deps.py && dvc commit` does it"
    )
    # A dep the stage does not run would make it rerun for nothing.
    assert not extra, (
        f"dvc.yaml stage {stage!r} declares code it does not run (remove): {_rel(extra)}; "
        f"`python scripts/update-dvc-deps.py && dvc commit` does it"
    )
    for dep in _code_deps(stage):
        assert dep.exists(), f"dvc.yaml stage {stage!r} names {dep}, which does not exist"


def test_the_closure_follows_function_level_and_relative_imports():
    runs = {str(p.relative_to(SRC)) for p in closure("pipeline.stages.evaluate")}
    # evaluate.py imports filters, collapse and the registry inside functions only
    assert {"pipeline/nn/filters.py", "pipeline/nn/collapse.py", "pipeline/tracking/registry.py"} <= runs
    # robustness/autoattack.py reaches attacks.py through `from .attacks import ...`
    assert "pipeline/robustness/attacks.py" in {str(p.relative_to(SRC)) for p in closure("pipeline.stages.robustness")}
    # training stops at train: the later stages run from stages.py by name, never by the DVC stage
    assert "pipeline/stages/evaluate.py" not in {str(p.relative_to(SRC)) for p in closure("pipeline.stages.train")}


@pytest.mark.parametrize("name", sorted(OUTPUT_ONLY))
def test_an_output_only_module_touches_only_logging_and_warnings(name):
    """What leaves a module out of every stage's deps: it cannot change a file a stage writes."""
    path = module_file(name)
    assert path is not None, f"code_graph.OUTPUT_ONLY names {name}, which does not exist"
    assert imported_modules(path) <= {"__future__", "__future__.annotations", "logging", "warnings"}, (
        f"{name} is declared output-only but imports {sorted(imported_modules(path))}"
    )
    importers = [p for p in (SRC / "pipeline").rglob("*.py") if name in imported_modules(p)]
    for importer in importers:
        entry = module_name(importer)
        assert entry.startswith("pipeline.stages.") and "def main(" in importer.read_text(), (
            f"{entry} imports the output-only {name}: only a stage's entry point (its main) may"
        )
    assert importers, f"{name} is imported by no stage: delete it and its OUTPUT_ONLY entry"


def test_the_notice_filter_is_no_dependency_of_training():
    runs = {str(p.relative_to(SRC)) for p in closure("pipeline.stages.train")}
    assert "pipeline/stages/train.py" in runs and "pipeline/stages/library_notices.py" not in runs


def test_parameters_are_declared_by_whole_sections():
    for name in ("train", "evaluate", "robustness"):
        params = DVC_YAML[name]["params"]
        assert "data" in params and not any("." in str(p) for p in params), (name, params)


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _stale(project: Path) -> dict[str, list[str]]:
    """stage -> what `dvc status` reports changed for it."""
    out = _dvc(project, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {
        stage: [next(iter(c)) if isinstance(c, dict) else c for c in changes]
        for stage, changes in json.loads(out.stdout or "{}").items()
    }


@pytest.fixture(scope="module")
def recorded_copy(tmp_path_factory) -> Path:
    """A copy of the project whose dvc.lock records every stage as done (`dvc commit`).

    The outputs that are not in git (data, checkpoints, figures) are small placeholders:
    what is under test is which stages DVC takes for stale, which only their deps decide.
    """
    project = tmp_path_factory.mktemp("project")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, tracked):
        src = PROJECT / rel
        if src.is_file() and not src.is_symlink():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, project / rel)
    for folder in (
        "data/mnist",
        "outputs/main/checkpoints",
        "outputs/main/figures/evaluation",
        "outputs/main/figures/robustness",
    ):
        (project / folder).mkdir(parents=True, exist_ok=True)
        (project / folder / "placeholder").write_text(folder)
    (project / "outputs/main/run.json").write_text("{}\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    out = _dvc(project, "commit", "--force")
    assert out.returncode == 0, out.stderr
    assert _stale(project) == {}, "dvc status must be clean once every stage is recorded"
    return project


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    [
        "pipeline/nn/filters.py",
        "pipeline/common/plots.py",
        "pipeline/robustness/attacks.py",
        "pipeline/tracking/runs.py",
        "pipeline/claims/catalogue.py",
    ],
)
def test_editing_a_module_makes_exactly_the_stages_that_run_it_stale(recorded_copy, module):
    path = recorded_copy / "src" / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        expected = {name for name, (entry, _) in stages.STAGES.items() if SRC / module in closure(entry)}
        stale = _stale(recorded_copy)
        assert set(stale) == expected, (
            f"editing {module}: dvc status marks {sorted(stale)}, runs it: {sorted(expected)}"
        )
        assert all(changes == ["changed deps"] for changes in stale.values()), stale
    finally:
        path.write_text(original)
    assert _stale(recorded_copy) == {}


@pytest.mark.slow
def test_a_new_parameter_key_makes_the_stages_reading_its_section_stale(recorded_copy):
    params = recorded_copy / "params.yaml"
    original = params.read_text()
    cfg = yaml.safe_load(original)
    cfg["data"]["a_new_key"] = 1
    params.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        assert set(_stale(recorded_copy)) == {"train", "evaluate", "robustness"}
    finally:
        params.write_text(original)
