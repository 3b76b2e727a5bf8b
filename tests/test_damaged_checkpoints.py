"""A damaged checkpoint never blocks its run folder, and a fresh start never deletes an intact one.

Each test kills a real training after two of its four epochs, damages its checkpoints the way a
cut copy or a crash outside the atomic write would, and runs the same command again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.common.metric_names import mlflow_name

SMALL = ["data.train_subset=2000", "data.batch_size=50", "trainer.max_epochs=4", "tracking.log_model=false"]


def _killed_run(tmp_path, mnist_root):
    """The command line of a training killed (SIGKILL) once two epochs are on disk."""
    run_dir = tmp_path / "run"
    args = [*SMALL, f"run_dir={run_dir}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"data.root={mnist_root}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = run_dir / "plots" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "training"
    return run_dir, args


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _only_run_finished_all_epochs(tmp_path, run_dir):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert [r.info.run_id for r in runs] == [json.loads((run_dir / "run.json").read_text())["run_id"]]
    assert runs[0].info.status == "FINISHED"
    assert max(m.step for m in client.get_metric_history(runs[0].info.run_id, mlflow_name("val/acc"))) == 4
    assert (run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_a_truncated_last_checkpoint_is_kept_aside_and_training_resumes_from_best(tmp_path, mnist_root):
    run_dir, args = _killed_run(tmp_path, mnist_root)
    ckpts = run_dir / "checkpoints"
    _truncate(ckpts / "last.ckpt")
    damaged = (ckpts / "last.ckpt").read_bytes()

    again = run_module("pipeline.stages.train", *args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    (kept,) = ckpts.glob("last.ckpt.damaged-*")
    assert kept.read_bytes() == damaged  # kept as it was, for a post-mortem
    assert (
        f"{ckpts}: last.ckpt does not load (kept as {kept.name}); resuming from {ckpts / 'best.ckpt'}" in again.stdout
    )
    _only_run_finished_all_epochs(tmp_path, run_dir)


@pytest.mark.slow
def test_with_no_intact_checkpoint_training_starts_again_in_the_same_run(tmp_path, mnist_root):
    run_dir, args = _killed_run(tmp_path, mnist_root)
    ckpts = run_dir / "checkpoints"
    _truncate(ckpts / "last.ckpt")
    _truncate(ckpts / "best.ckpt")

    again = run_module("pipeline.stages.train", *args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list(ckpts.glob("last.ckpt.damaged-*"))) == len(list(ckpts.glob("best.ckpt.damaged-*"))) == 1
    assert "no intact checkpoint: training starts again from epoch 1 in the same MLflow run" in again.stdout
    assert "from epoch 1" in again.stdout.split("resuming MLflow run", 1)[1].splitlines()[0]
    history = (run_dir / "plots" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2", "3", "4"]
    _only_run_finished_all_epochs(tmp_path, run_dir)


@pytest.mark.slow
def test_a_deleted_last_checkpoint_resumes_from_best_instead_of_wiping_it(tmp_path, mnist_root):
    run_dir, args = _killed_run(tmp_path, mnist_root)
    (run_dir / "checkpoints" / "last.ckpt").unlink()

    again = run_module("pipeline.stages.train", *args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert f"no last.ckpt; resuming from {run_dir / 'checkpoints' / 'best.ckpt'}" in again.stdout
    _only_run_finished_all_epochs(tmp_path, run_dir)


@pytest.mark.slow
def test_a_fresh_start_over_an_unfinished_run_keeps_its_checkpoints(tmp_path, mnist_root):
    run_dir, args = _killed_run(tmp_path, mnist_root)
    best = (run_dir / "checkpoints" / "best.ckpt").read_bytes()

    other = run_module("pipeline.stages.train", *args, "seed=7", cwd=tmp_path)  # other settings: a new run

    assert other.returncode == 0, other.stderr[-3000:]
    (kept,) = run_dir.glob("checkpoints.replaced-*")
    assert (kept / "best.ckpt").read_bytes() == best
    assert f"the unfinished run's checkpoints are kept in {kept}" in other.stdout
    assert "resuming" not in other.stdout
