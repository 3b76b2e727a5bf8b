"""DVC remote storage: outputs pushed from one checkout come back on a fresh clone with `dvc pull`.

The remote is a local folder here; users point the same commands at S3 or another store (README).
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import run_module
from test_end_to_end import _dvc, _project_copy

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
# Outputs DVC caches (restored by pull) and, after them, files git carries (cache: false).
CACHED = [
    "data/mnist/train.pt",
    "data/mnist/test.pt",
    "outputs/main/checkpoints/best.ckpt",
    "outputs/main/run.json",
    "outputs/main/figures/evaluation/confusion.png",
]


def _git(cwd, *args):
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.mark.slow
def test_push_then_pull_on_a_fresh_clone_restores_the_outputs(tmp_path, idx_dir):
    project = _project_copy(tmp_path, idx_dir)
    params = run_module(
        "pipeline.stages.config",
        "data.source=local",
        f"data.local_dir={idx_dir}",
        "data.train_subset=2000",
        "trainer.max_epochs=1",
        "robustness=quick",
        "tracking.log_model=false",
        cwd=project,
    )
    assert params.returncode == 0, params.stderr
    (project / "params.yaml").write_text(params.stdout)

    # The pipeline up to evaluation (the robustness stage is not needed to show storage).
    repro = _dvc(project, "repro", "evaluate")
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    remote = tmp_path / "dvc-remote"
    added = _dvc(project, "remote", "add", "-d", "storage", str(remote))
    assert added.returncode == 0, added.stderr
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "pipeline outputs, remote")

    pushed = _dvc(project, "push", "--with-deps", "evaluate")
    assert pushed.returncode == 0, pushed.stdout[-3000:] + pushed.stderr[-3000:]
    assert sum(1 for f in remote.rglob("*") if f.is_file()) >= len(CACHED)

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True, capture_output=True)
    for name in CACHED:
        assert not (clone / name).exists(), f"{name} should come from the remote, not from git"
    assert (clone / "outputs/main/metrics.json").is_file()  # a cache: false metric travels in git

    pulled = _dvc(clone, "pull", "--with-deps", "evaluate")
    assert pulled.returncode == 0, pulled.stdout[-3000:] + pulled.stderr[-3000:]
    for name in CACHED:
        assert (clone / name).read_bytes() == (project / name).read_bytes(), name
    status = _dvc(clone, "status", "--with-deps", "evaluate")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    again = _dvc(clone, "repro", "evaluate")  # nothing to recompute: the pulled outputs are current
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout[-3000:]
