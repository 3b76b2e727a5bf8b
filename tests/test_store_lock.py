"""A SQLite store held by another process's write transaction: before a run opens, waited on with a
line that says so, then one clear message naming the file and the cause, exit 2, no traceback; during
training, its metrics wait in the run folder (a line names the file) and go in once it is free."""

import json
import subprocess
import sys
import time

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.common.metric_names import mlflow_name

SMALL = ["data.train_subset=1000", "data.batch_size=100", "trainer.max_epochs=3", "tracking.log_model=false"]
HOLD = "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(float(sys.argv[2]))"  # noqa: E501


def _store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # creates the store's tables
    return tmp_path / "mlflow.db", uri


def _hold(db, seconds):
    """Another process with a write transaction open on db for `seconds` (an open UI write, a job)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _train(tmp_path, uri, mnist_root, *extra):
    args = [*SMALL, f"run_dir={tmp_path / 'run'}", f"tracking.uri={uri}", f"data.root={mnist_root}", *extra]
    return args, run_module("pipeline.stages.train", *args, cwd=tmp_path)


@pytest.mark.slow
def test_a_busy_store_is_waited_on_with_a_line_that_says_so(tmp_path, mnist_root):
    db, uri = _store(tmp_path)
    holder = _hold(db, 600)
    args = [*SMALL, f"run_dir={tmp_path / 'run'}", f"tracking.uri={uri}", f"data.root={mnist_root}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args, "tracking.lock_timeout_s=300"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the command waits, saying so, until the holder lets go
    holder.kill()
    rest = proc.stderr.read()
    proc.wait(timeout=300)

    assert first.strip() == (
        f"[tracking] {db} is busy: another process is writing to it (the MLflow UI, another job, a sqlite3 "
        "shell in a transaction); waiting up to 300 s (tracking.lock_timeout_s)"
    )
    assert proc.returncode == 0, rest[-3000:]
    assert rest.startswith(f"[tracking] {db} is free again")
    (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_a_store_locked_past_the_wait_stops_with_the_file_and_the_cause(tmp_path, mnist_root):
    db, uri = _store(tmp_path)
    holder = _hold(db, 60)
    try:
        _, out = _train(tmp_path, uri, mnist_root, "tracking.lock_timeout_s=3")
    finally:
        holder.kill()

    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the run store {db} stayed locked for 3 s: another process is writing to it")
    assert "tracking.lock_timeout_s=<seconds> waits longer" in last
    assert not (tmp_path / "run" / "run.json").exists()  # stopped before any run was opened


@pytest.mark.slow
def test_a_lock_held_mid_run_past_mlflows_wait_keeps_the_metrics_until_it_is_free(tmp_path, mnist_root):
    db, uri = _store(tmp_path)
    args = [
        *SMALL,
        "data.train_subset=6000",  # epochs of seconds: the lock lands while training runs
        "trainer.max_epochs=4",
        f"run_dir={tmp_path / 'run'}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    history = tmp_path / "run" / "plots" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not history.is_file():
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before the store could be locked"
    holder = _hold(db, 90)  # longer than MLflow's 20 s busy wait on each write
    try:
        _, err = proc.communicate(timeout=420)
    finally:
        holder.kill()

    # Training went on; its metrics waited in the run folder and went in once the lock was let go.
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "tracking server" not in err
    busy = [line for line in err.splitlines() if line.startswith(f"[tracking] run store {db} busy (another process")]
    assert len(busy) == 1 and "metrics kept in" in busy[0], err[-3000:]
    assert f"[tracking] run store {db} is free again: the kept metrics of run" in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["state"] == "completed"
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, mlflow_name("val/acc"))]
    assert sorted(steps) == [1, 2, 3, 4]  # each epoch once
