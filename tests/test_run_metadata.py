"""What every run and experiment says about itself, checked on a real SQLite store and a real git
repository: the experiment kind the MLflow UI opens on, and `git.dirty` that ignores what DVC rewrites."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import PROJECT


def test_new_and_existing_experiments_open_on_training_runs(tmp_path):
    from pipeline.tracking.client import client
    from pipeline.tracking.runs import experiment_id

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = client(uri)
    old = c.create_experiment("made-before-the-tag")  # as stores from earlier versions hold them
    chosen = c.create_experiment("chosen-in-the-ui", tags={"mlflow.experimentKind": "genai_development"})
    new = experiment_id(c, "mnist", uri)
    assert experiment_id(c, "made-before-the-tag", uri) == old
    assert experiment_id(c, "chosen-in-the-ui", uri) == chosen
    kinds = {e: c.get_experiment(e).tags.get("mlflow.experimentKind") for e in (new, old, chosen)}
    assert kinds == {new: "custom_model_development", old: "custom_model_development", chosen: "genai_development"}


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with the project's dvc.yaml and params.yaml, and DVC's outputs committed."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    for name in ("dvc.yaml", "params.yaml", "dvc.lock"):
        shutil.copy(PROJECT / name, tmp_path / name)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    (tmp_path / "outputs" / "main" / "plots").mkdir(parents=True)
    (tmp_path / "outputs" / "main" / "metrics.json").write_text("{}\n")
    (tmp_path / "outputs" / "main" / "plots" / "history.csv").write_text("epoch\n")

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_git_dirty_ignores_what_dvc_rewrites_but_not_code(repo):
    from pipeline.tracking.provenance import git_state

    assert git_state()["git.dirty"] == "false"
    (repo / "dvc.lock").write_text("schema: '2.0'\n")  # DVC rewrites the lock between stages
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 1"))  # `dvc exp run -S seed=1`
    (repo / "outputs" / "main" / "metrics.json").write_text('{"acc": 1}\n')  # a stage's metrics
    (repo / "outputs" / "main" / "plots" / "history.csv").write_text("epoch\n1\n")  # ${run_dir} resolved
    state = git_state()
    assert state["git.dirty"] == "false"
    assert state["git.commit"] == state["mlflow.source.git.commit"] and len(state["git.commit"]) == 40
    (repo / "src" / "code.py").write_text("x = 2\n")  # the code itself
    assert git_state()["git.dirty"] == "true"
