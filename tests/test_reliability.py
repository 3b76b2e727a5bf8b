"""Faults: a killed training resumes to the same result, runs repeat exactly, divergence fails loudly."""

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

SMALL = ["data.train_subset=3000", "data.batch_size=50", "trainer.max_epochs=4", "tracking.log_model=false"]


def _train(tmp_path, mnist_root, name, *extra, env=None):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        *SMALL,
        f"run_dir={tmp_path / name}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        *extra,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return tmp_path / name, uri, out


def _history(run_dir):
    lines = (run_dir / "plots" / "history.csv").read_text().splitlines()
    # drop the wall-clock column; everything else must match exactly
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "time/epoch_s"]
    return [[line.split(",")[i] for i in keep] for line in lines]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_root):
    """An uninterrupted run that the others must reproduce exactly."""
    return _train(tmp_path_factory.mktemp("reference"), mnist_root, "reference")[0]


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics(tmp_path, mnist_root, reference):
    again, _, _ = _train(tmp_path, mnist_root, "again")
    assert _history(again) == _history(reference)
    assert (
        json.loads((again / "metrics.json").read_text())["test"]
        == json.loads((reference / "metrics.json").read_text())["test"]
    )


@pytest.mark.slow
def test_killed_training_resumes_in_the_same_run_with_the_same_result(tmp_path, mnist_root, reference):
    run_dir = tmp_path / "killed"
    uri = f"sqlite:///{tmp_path}/killed.db"
    args = [
        sys.executable,
        "-m",
        "pipeline.stages.train",
        *SMALL,
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    history = run_dir / "plots" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill once two epochs are on disk
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "training"

    again = run_module("pipeline.stages.train", *args[3:], cwd=tmp_path, env=None)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming MLflow run" in again.stdout
    assert _history(run_dir) == _history(reference)
    assert (
        json.loads((run_dir / "metrics.json").read_text())["test"]
        == json.loads((reference / "metrics.json").read_text())["test"]
    )

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].info.run_id == json.loads((run_dir / "run.json").read_text())["run_id"]
    assert max(m.step for m in client.get_metric_history(runs[0].info.run_id, mlflow_name("val/acc"))) == 4


@pytest.mark.slow
def test_diverging_loss_stops_with_a_clear_message_and_a_failed_run(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        *SMALL,
        "optim=sgd",
        "optim.lr=1e8",
        f"run_dir={tmp_path / 'nan'}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "the run diverged. Lower optim.lr (now 100000000.0)" in out.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "FAILED"
    assert not (tmp_path / "nan" / "metrics.json").exists()


@pytest.mark.slow
def test_secrets_are_never_logged_and_a_finished_run_is_retrained_not_resumed(tmp_path, mnist_root):
    secret = "s3cr3t-token-value-42"
    env = {"MY_API_TOKEN": secret, "AWS_SECRET_ACCESS_KEY": secret}
    _train(tmp_path, mnist_root, "s", "trainer.max_epochs=1", env=env)
    _run_dir, uri, out = _train(tmp_path, mnist_root, "s", "trainer.max_epochs=1", env=env)
    assert "resuming" not in out.stdout  # the first run had finished: the same command trains afresh
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert len(runs) == 2
    run = runs[0]
    logged = json.dumps({"params": run.data.params, "tags": run.data.tags})
    logged += (
        client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
        and (tmp_path / "config.yaml").read_text()
    )
    assert secret not in logged


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.slow
def test_interrupted_training_ends_killed_and_keeps_what_it_logged(tmp_path, mnist_root, sig):
    run_dir = tmp_path / "run"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.stages.train",
            *SMALL,
            "trainer.max_epochs=50",
            f"run_dir={run_dir}",
            f"tracking.uri={uri}",
            f"data.root={mnist_root}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = run_dir / "plots" / "history.csv"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.is_file() and len(history.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    proc.send_signal(sig)  # as Ctrl-C (SIGINT) or a scheduler's stop (SIGTERM) would
    assert proc.wait(timeout=120) != 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "KILLED"
    assert len(client.get_metric_history(run.info.run_id, mlflow_name("val/acc"))) >= 1  # what was logged stays


class _InterruptedOnWrite:
    """A file that receives Ctrl-C (or `sig`) on its third write, as a checkpoint save may."""

    def __init__(self, f, sig=signal.SIGINT):
        self.f, self.sig, self.writes = f, sig, 0

    def write(self, data):
        self.writes += 1
        if self.writes == 3:
            os.kill(os.getpid(), self.sig)
        return self.f.write(data)

    def flush(self):
        self.f.flush()

    def fileno(self):
        return self.f.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_ctrl_c_during_a_checkpoint_save_still_reads_as_an_interrupt(tmp_path):
    # torch.save's zip writer turns a KeyboardInterrupt raised in the middle of a write into its
    # own RuntimeError; the run must still end KILLED, not FAILED.
    import torch

    from pipeline.tracking.runs import end_status
    from pipeline.training.callbacks import stop_on_ctrl_c

    class Trainer:
        should_stop = False

    trainer = Trainer()
    before = signal.getsignal(signal.SIGINT)
    with (
        pytest.raises(KeyboardInterrupt) as caught,
        stop_on_ctrl_c(trainer) as interrupted,
        open(tmp_path / "last.ckpt", "wb") as f,
    ):
        torch.save({"w": torch.zeros(1000)}, _InterruptedOnWrite(f))
    assert interrupted == [signal.SIGINT] and trainer.should_stop
    assert isinstance(caught.value.__cause__, RuntimeError)  # the writer's error, kept as the cause
    assert end_status(caught.value) == "KILLED"
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_sigterm_during_a_checkpoint_save_acts_once_the_file_is_whole(tmp_path, monkeypatch):
    # Raised inside one of torch.save's writes, the SystemExit became the zip writer's RuntimeError
    # and the run ended FAILED (seen on a busy machine); now the save completes, then SIGTERM acts.
    import builtins

    import torch

    from pipeline.tracking.interrupts import SIGTERM_EXIT, sigterm_raises
    from pipeline.training import checkpoint_io

    def signalling_open(path, mode):
        return _InterruptedOnWrite(builtins.open(path, mode), signal.SIGTERM)

    monkeypatch.setattr(checkpoint_io, "open", signalling_open, raising=False)
    path = tmp_path / "last.ckpt"
    with pytest.raises(SystemExit) as caught, sigterm_raises():
        checkpoint_io.AtomicCheckpointIO().save_checkpoint({"w": torch.arange(1000.0)}, path)
    assert caught.value.code == SIGTERM_EXIT
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(1000.0))


@pytest.fixture
def python_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt, as at a terminal: a pytest that a script started in the
    background inherits SIGINT ignored (as CI may), and Python then leaves it ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_inside_a_store_write_waits_for_it_and_the_run_still_ends_killed(tmp_path, python_ctrl_c):
    # Cut between SQLite's statements and its commit, a write was lost, and could leave the
    # database locked so that the run stayed RUNNING. Now the write completes, then Ctrl-C acts.
    from sqlalchemy import event

    from pipeline.tracking.client import client
    from pipeline.tracking.runs import Run, end_status

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = client(uri)
    run_id = c.create_run(c.create_experiment("ctrl-c")).info.run_id
    cut: list[str] = []

    def ctrl_c_mid_transaction(conn, cursor, statement, params, context, executemany):
        if not cut and statement.lstrip().upper().startswith("INSERT INTO LATEST_METRICS"):
            cut.append(statement)
            signal.raise_signal(signal.SIGINT)

    engine = c._tracking_client.store.engine
    event.listen(engine, "after_cursor_execute", ctrl_c_mid_transaction)
    try:
        with pytest.raises(KeyboardInterrupt):
            Run(uri, run_id).log_metrics({"val/acc": 0.5, "val/loss": 1.0}, step=1)
    finally:
        event.remove(engine, "after_cursor_execute", ctrl_c_mid_transaction)
    assert cut  # the interrupt did land inside the transaction
    Run(uri, run_id).end(end_status(KeyboardInterrupt()))
    run = c.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.metrics == {"curves/val/acc": 0.5, "curves/val/loss": 1.0}  # the whole write, not half of it


def test_a_second_ctrl_c_stops_a_held_write_at_once(python_ctrl_c):
    from pipeline.tracking.interrupts import ctrl_c_after_write

    before = signal.getsignal(signal.SIGINT)
    reached: list[str] = []
    with pytest.raises(KeyboardInterrupt) as caught, ctrl_c_after_write(), ctrl_c_after_write():  # held once
        signal.raise_signal(signal.SIGINT)
        reached.append("after the first")
        signal.raise_signal(signal.SIGINT)
        reached.append("after the second")
    assert reached == ["after the first"]
    assert caught.value.__context__ is None  # one interrupt, not a second one raised on the way out
    assert signal.getsignal(signal.SIGINT) is before
    with ctrl_c_after_write():
        reached.append("no Ctrl-C")
    assert reached[-1] == "no Ctrl-C" and signal.getsignal(signal.SIGINT) is before
