"""A failed or interrupted Hydra run ends with the exact command that resumes it, also kept as its
MLflow description; that command resumes the run in place."""

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.common.metric_names import mlflow_name
from pipeline.stages.resume_command import command_line


def test_the_command_keeps_the_overrides_and_points_at_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pipeline-train"])
    line = command_line(["model.hidden=[256, 128]", f"run_dir={tmp_path}/old", "seed=3"], tmp_path / "run")
    assert line == f"pipeline-train 'model.hidden=[256, 128]' seed=3 run_dir={tmp_path / 'run'}"
    monkeypatch.setattr(sys, "argv", ["-m"])
    assert command_line([], "rel").startswith("python -m pipeline.stages.train run_dir=/")


@pytest.mark.slow
def test_ctrl_c_ends_with_the_resume_command_and_that_command_finishes_the_same_run(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "data.train_subset=6000",
        "data.batch_size=100",
        "trainer.max_epochs=3",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while (
        time.time() < deadline
        and proc.poll() is None
        and not list(tmp_path.glob("outputs/runs/*/checkpoints/last.ckpt"))
    ):
        time.sleep(0.02)  # Ctrl-C once the first epoch's checkpoint is on disk
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    (run_dir,) = tmp_path.glob("outputs/runs/*")

    assert proc.returncode != 0
    last = err.strip().splitlines()[-1]
    assert last == f"to resume: python -m pipeline.stages.train {' '.join(args)} run_dir={run_dir}"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["mlflow.note.content"].endswith(last.removeprefix("to resume: "))

    words = shlex.split(last.removeprefix("to resume: "))
    assert words[:3] == ["python", "-m", "pipeline.stages.train"]
    again = run_module("pipeline.stages.train", *words[3:], cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming MLflow run {run.info.run_id}" in again.stdout
    assert "to resume" not in again.stderr
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "FINISHED"
    assert max(m.step for m in client.get_metric_history(run.info.run_id, mlflow_name("val/acc"))) == 3
    assert Path(run_dir, "metrics.json").is_file()
