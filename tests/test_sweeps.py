"""Hydra multirun sweeps under load: parallel jobs (joblib) writing to SQLite and to an MLflow server."""

import signal

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient
from mlflow_server import MlflowServer

from pipeline.common.metric_names import mlflow_name

TINY_JOB = ["data.train_subset=500", "trainer.max_epochs=1", "tracking.log_model=false"]


def _sweep(tmp_path, mnist_root, uri, seeds, n_jobs):
    out = run_module(
        "pipeline.stages.train",
        "-m",
        f"seed={','.join(map(str, seeds))}",
        *TINY_JOB,
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={n_jobs}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "database is locked" not in out.stdout + out.stderr
    return out


def _check_parent_and_children(uri, n):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == n and len(runs) == n + 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/jobs"] == n
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.params["seed"]) for c in children) == list(range(1, n + 1))
    for child in children:  # complete, not just present
        assert child.info.status == "FINISHED"
        assert 0.1 < child.data.metrics["test/acc"] <= 1.0
        assert len(client.get_metric_history(child.info.run_id, mlflow_name("val/acc"))) == 1
        assert "config.yaml" in {a.path for a in client.list_artifacts(child.info.run_id)}


@pytest.mark.slow
def test_eight_jobs_four_at_a_time_on_the_default_sqlite_store(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    _sweep(tmp_path, mnist_root, uri, range(1, 9), n_jobs=4)
    _check_parent_and_children(uri, 8)
    assert len(list((tmp_path / "multirun").glob("*/metrics.json"))) == 8


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    server.start()
    yield server.url
    server.kill(signal.SIGTERM)


@pytest.mark.slow
def test_eight_jobs_four_at_a_time_against_an_mlflow_server_on_loopback(tmp_path, mnist_root, mlflow_server):
    _sweep(tmp_path, mnist_root, mlflow_server, range(1, 9), n_jobs=4)
    _check_parent_and_children(mlflow_server, 8)


@pytest.mark.slow
def test_a_sweep_shows_its_progress_logs_alike_in_every_job_and_registers_nothing(tmp_path, mnist_root):
    """Two jobs one after the other in one process (Hydra's basic launcher), with the default log_model."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "-m",
        "seed=1,2",
        "data.train_subset=500",
        "trainer.max_epochs=1",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    text = out.stdout + out.stderr
    assert "[HYDRA] Launching 2 jobs locally" in text
    assert "#0 : seed=1" in text and "#1 : seed=2" in text
    # Lightning's own lines look the same in both jobs (not re-routed through logging after the first)
    gpu = [line for line in text.splitlines() if "GPU available" in line]
    assert gpu == ["GPU available: False, used: False"] * 2, gpu
    assert not [line for line in text.splitlines() if line.startswith("INFO:")]
    client = MlflowClient(uri)
    assert client.search_registered_models() == []  # tracking.register_sweep_jobs is false by default
    children = [
        r
        for r in client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
        if r.data.tags.get("mlflow.parentRunId")
    ]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
