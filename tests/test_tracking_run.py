"""The run handle: one owner per run lifecycle, a true final status, sweep children linked explicitly."""

from __future__ import annotations

import pytest

from pipeline.config.settings import compose
from pipeline.tracking import sweeps
from pipeline.tracking.client import client
from pipeline.tracking.runs import Run, recording, start_run


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return uri, compose([f"tracking.uri={uri}"])


def _status(run: Run) -> str:
    return run.get().info.status


@pytest.mark.parametrize(
    "raised, status",
    [(None, "FINISHED"), (ValueError("bad"), "FAILED"), (KeyboardInterrupt(), "KILLED"), (SystemExit(143), "KILLED")],
)
def test_recording_closes_the_run_with_its_true_status(store, raised, status):
    uri, cfg = store
    run = start_run(cfg, "test")
    assert run.uri == uri
    run.end()  # as training leaves it
    try:
        with recording(run):
            assert _status(run) == "RUNNING"  # reopened for this stage's writes
            run.log_metrics({"test/acc": 0.5})
            if raised is not None:
                raise raised
    except BaseException as err:
        assert err is raised
    assert _status(run) == status
    assert run.get().data.metrics["test/acc"] == 0.5


def test_a_sweep_job_names_its_parent_explicitly(store, monkeypatch):
    _, cfg = store
    parent = sweeps.start_sweep(cfg, "sweep-test", tags={"sweep": "parent"})
    monkeypatch.setattr(sweeps.os, "environ", dict(sweeps.os.environ))  # leave the real one alone
    sweeps.announce_sweep_parent(parent.run_id)
    assert sweeps.sweep_parent_id() == parent.run_id
    child = start_run(cfg, "job", parent_run_id=sweeps.sweep_parent_id())
    alone = start_run(cfg, "not a job")
    assert [r.info.run_id for r in sweeps.child_runs(parent)] == [child.run_id]
    sweeps.announce_sweep_parent(None)
    assert sweeps.sweep_parent_id() is None and alone.run_id != child.run_id


def test_one_client_per_store(store, tmp_path):
    uri, _ = store
    assert client(uri) is client(uri)
    assert client(uri) is not client(f"sqlite:///{tmp_path}/other.db")


_LOG_SAME_DATASET = """
import sys, time
from pipeline.tracking.client import client
from pipeline.tracking.runs import Run
uri, experiment, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
run = Run(uri, client(uri).create_run(experiment).info.run_id)
while time.time() < start:  # every job logs at the same instant, as a sweep's first epoch does
    pass
run.log_dataset("mnist", "0123abcd", {"path": "data"}, {"num_rows": 1})
"""


@pytest.mark.slow
def test_jobs_that_log_the_same_dataset_at_once_all_record_it(tmp_path):
    """MLflow's check-then-insert of a dataset row races between processes (a parallel sweep on a
    fresh store); every job must still record its input."""
    import subprocess
    import sys
    import time

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = client(uri).create_experiment("race")
    start = str(time.time() + 8)  # after every process has imported and created its run
    jobs = [
        subprocess.Popen([sys.executable, "-c", _LOG_SAME_DATASET, uri, experiment, start], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in jobs]
    assert all(p.returncode == 0 for p in jobs), [e[-300:] for e in errors if e]
    runs = client(uri).search_runs([experiment])
    assert len(runs) == 6 and all([d.dataset.name for d in r.inputs.dataset_inputs] == ["mnist"] for r in runs)


@pytest.mark.slow
def test_logging_a_model_leaves_no_store_behind_in_the_process(store, tmp_path, monkeypatch):
    """MLflow's fluent API is pointed at a store for one call only: a later client of another
    store must not read the first one's registry, nor a later subprocess inherit it."""
    import os

    import torch
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri, cfg = store
    run = start_run(cfg, "test")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    assert run.log_model(model, {"name": "linear"}, "mnist-leak") == "1"
    assert [m.name for m in MlflowClient(uri, registry_uri=uri).search_registered_models()] == ["mnist-leak"]
    other = f"sqlite:///{tmp_path}/other.db"
    assert MlflowClient(other).search_registered_models() == []
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ


def test_a_curve_is_logged_at_its_own_steps_and_read_back_in_order(store):
    _uri, cfg = store
    run = start_run(cfg, "test")
    with recording(run, reopen=False):
        run.log_points("train/step_loss", [(20, 1.5), (10, 2.0), (30, 1.25)])
    assert run.metric_points("train/step_loss") == [(10, 2.0), (20, 1.5), (30, 1.25)]
    assert run.metric_history("train/step_loss") == [2.0, 1.5, 1.25]
