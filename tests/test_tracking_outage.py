"""A tracking server that stops answering mid-training: training goes on, keeps its metrics in the run
folder, says so (again every few seconds while it lasts), and sends them, once each, when the server
answers; a server still down at the end leaves a "recording" run that the same command finishes.

Against a real `mlflow server` on loopback, killed after epoch 1 and started again on the same store
and port. MLflow's HTTP retries are shortened so that a ~20 s outage acts out a long one (by default
the client retries for about 4 minutes).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import _command_env
from mlflow_server import MlflowServer

from pipeline.common.metric_names import mlflow_name
from pipeline.tracking.metric_journal import MetricJournal, journal_path, kept_journals, send_kept, unreachable

SHORT_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
DOWN_S = 20
EPOCHS = 3
SMALL = [
    "data.train_subset=2000",
    f"trainer.max_epochs={EPOCHS}",
    "tracking.log_model=false",
    "tracking.system_metrics_interval=1",
    "tracking.outage_report_s=5",
]


@pytest.fixture
def server(tmp_path):
    found = MlflowServer(tmp_path, workers=1)
    found.start()
    yield found
    found.kill()


def _train(tmp_path: Path, server: MlflowServer, mnist_root: Path, *extra: str) -> subprocess.Popen:
    args = [*SMALL, f"run_dir={tmp_path / 'run'}", f"data.root={mnist_root}", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        env=_command_env({"MLFLOW_TRACKING_URI": server.url, **SHORT_RETRIES}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _outage_after_epoch_1(proc: subprocess.Popen, server: MlflowServer, down_s: float | None) -> list[str]:
    """Read the command's lines; kill the server when epoch 1 is reported; start it again `down_s` later
    (None: not during the command). Returns every line with the seconds since the kill."""
    lines: list[str] = []
    killed_at: list[float] = []
    restarter: list[threading.Thread] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        at = time.monotonic() - killed_at[0] if killed_at else -1.0
        lines.append(f"{at:7.1f} {line.rstrip()}")
        if not killed_at and line.startswith("[train] epoch 1/"):
            server.kill(signal.SIGTERM)
            killed_at.append(time.monotonic())
            if down_s is not None:
                restarter.append(threading.Thread(target=lambda: (time.sleep(down_s), server.start())))
                restarter[0].start()
    proc.wait(timeout=600)
    for t in restarter:
        t.join()
    return lines


def _client(url: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url)


def _only_run(url: str):
    client = _client(url)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    return run


def _assert_each_epoch_once(url: str, run_id: str) -> None:
    client = _client(url)
    for key in ("val/acc", "train/loss", "time/epoch_s"):
        history = client.get_metric_history(run_id, mlflow_name(key))
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1)), (key, history)
    for key in ("val/best_acc", "time/train_s"):
        assert len(client.get_metric_history(run_id, mlflow_name(key))) == 1, key


@pytest.mark.slow
def test_training_goes_on_through_an_outage_and_sends_the_kept_metrics_once(tmp_path, server, mnist_root):
    proc = _train(tmp_path, server, mnist_root)
    lines = _outage_after_epoch_1(proc, server, DOWN_S)
    text = "\n".join(lines)
    assert proc.returncode == 0, text[-4000:] + (tmp_path / "log").read_text()[-2000:]

    journal = next(tmp_path.glob("run/unsent-metrics-*.json"), None)
    assert journal is None  # everything was sent
    down = [line for line in lines if "[tracking] tracking server unreachable since" in line]
    still = [line for line in lines if "[tracking] tracking server still unreachable" in line]
    assert len(down) == 1 and "metrics kept in" in down[0] and str(tmp_path / "run") in down[0], text
    assert len(still) >= 2, text  # repeated while it lasts (every 5 s here, 30 s by default)
    assert any("answers again" in line for line in lines), text
    assert "Traceback" not in text
    # Training went on during the outage: its last epoch ended before the server came back.
    last_epoch = next(line for line in lines if f"[train] epoch {EPOCHS}/" in line)
    assert float(last_epoch.split()[0]) < DOWN_S, text

    run = _only_run(server.url)
    assert run.info.status == "FINISHED"
    _assert_each_epoch_once(server.url, run.info.run_id)
    # time/train_s is training only: not the ~20 s the store was down
    train_s = run.data.metrics[mlflow_name("time/train_s")]
    epochs = _client(server.url).get_metric_history(run.info.run_id, mlflow_name("time/epoch_s"))
    epochs_s = sum(m.value for m in epochs)
    assert epochs_s <= train_s < DOWN_S / 2, (train_s, epochs_s)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["state"] == "completed"


@pytest.mark.slow
def test_a_server_still_down_at_the_end_leaves_a_run_the_same_command_finishes(tmp_path, server, mnist_root):
    wait = "tracking.outage_wait_s=3"
    proc = _train(tmp_path, server, mnist_root, wait)
    lines = _outage_after_epoch_1(proc, server, None)
    text = "\n".join(lines)
    assert proc.returncode == 75, text[-4000:]
    assert "Traceback" not in text
    run_dir = tmp_path / "run"
    error = next(line for line in lines if " error: " in line)
    assert "did not answer" in error and str(run_dir) in error and "run the same command with run_dir=" in error
    assert lines[-1].split(maxsplit=1)[1].startswith("to resume: ")
    assert f"run_dir={run_dir}" in lines[-1]
    # Nothing is lost: the checkpoints, the kept metrics (epochs 2.. and the summary), run.json's state.
    ref = json.loads((run_dir / "run.json").read_text())
    assert ref["state"] == "recording" and Path(ref["best_checkpoint"]).is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    (journal,) = kept_journals(run_dir)
    kept = json.loads(journal.read_text())["metrics"]
    assert {m["step"] for m in kept if m["key"] == mlflow_name("val/acc")} >= {EPOCHS}
    assert any(m["key"] == mlflow_name("time/train_s") for m in kept)

    server.start()
    command = [a for a in proc.args if not a.startswith("run_dir=")] + [f"run_dir={run_dir}"]  # type: ignore[union-attr]
    again = subprocess.run(
        command,
        cwd=tmp_path,
        env=_command_env({"MLFLOW_TRACKING_URI": server.url, **SHORT_RETRIES}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "[train] epoch" not in again.stdout  # nothing trained again
    assert f"sent {len(kept)} metrics kept in {journal}" in again.stderr
    assert not kept_journals(run_dir)
    run = _only_run(server.url)
    assert run.info.status == "FINISHED" and run.info.run_id == ref["run_id"]
    _assert_each_epoch_once(server.url, run.info.run_id)
    assert run.data.metrics[mlflow_name("time/train_s")] == pytest.approx(ref["train_seconds"])
    assert mlflow_name("test/acc") in run.data.metrics  # the evaluation followed
    assert json.loads((run_dir / "run.json").read_text())["state"] == "completed"


@pytest.mark.slow
def test_the_server_keeps_one_row_for_a_batch_sent_twice(server):
    """Why a resend is harmless: log_batch through the server with the same key/step/timestamp/value."""
    from mlflow.entities import Metric

    client = _client(server.url)
    run_id = client.create_run(client.create_experiment("dedup")).info.run_id
    batch = [Metric("val/acc", 0.5, 1_700_000_000_000, 1), Metric("val/acc", 0.6, 1_700_000_000_000, 2)]
    client.log_batch(run_id, metrics=batch)
    client.log_batch(run_id, metrics=batch)
    client.log_batch(run_id, metrics=batch[:1])
    assert sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val/acc")) == [(1, 0.5), (2, 0.6)]


# -- the journal alone (fast): a store that is not there ------------------------------------------


def test_the_journal_keeps_what_it_cannot_send_and_says_so(tmp_path, monkeypatch):
    import pipeline.tracking.metric_journal as mj

    monkeypatch.setattr(mj, "RETRY_EVERY_S", 0.05)
    said: list[str] = []
    calls: list[list] = []
    answers = threading.Event()

    def send(uri, run_id, entries):
        if not answers.is_set():
            raise ConnectionError("Max retries exceeded with url: /api/2.0/mlflow/runs/log-batch")
        calls.append(entries)

    monkeypatch.setattr(mj, "_send", send)
    journal = MetricJournal("http://127.0.0.1:1", "r1", tmp_path, report_every_s=0.5, say=said.append)
    journal.log_metrics({"val/acc": 0.5}, step=1)
    journal.log_metrics({"val/acc": 0.6}, step=2)
    assert not journal.flush(2.5)
    kept = json.loads(journal_path(tmp_path, "r1").read_text())
    assert [(m["step"], m["value"]) for m in kept["metrics"]] == [(1, 0.5), (2, 0.6)]
    assert kept["run_id"] == "r1" and kept["tracking_uri"] == "http://127.0.0.1:1"
    assert said[0].startswith("[tracking] tracking server unreachable since ")
    assert f"metrics kept in {journal_path(tmp_path, 'r1')}" in said[0]
    assert any("still unreachable" in line for line in said[1:])
    answers.set()
    assert journal.flush(5)
    journal.close()
    assert not journal_path(tmp_path, "r1").exists()
    assert [(m["step"], m["value"]) for batch in calls for m in batch] == [(1, 0.5), (2, 0.6)]
    assert "answers again" in said[-1]


def test_kept_metrics_are_sent_with_their_own_steps_and_timestamps(tmp_path, monkeypatch):
    import pipeline.tracking.metric_journal as mj

    path = journal_path(tmp_path, "r2")
    metrics = [{"key": "val_acc", "value": 0.7, "timestamp": 123, "step": 3}]
    path.write_text(json.dumps({"tracking_uri": "http://x", "run_id": "r2", "metrics": metrics}))
    got: list = []
    monkeypatch.setattr(mj, "_send", lambda uri, run_id, entries: got.append((uri, run_id, entries)))
    assert send_kept(tmp_path) == 1
    assert got == [("http://x", "r2", metrics)] and not path.exists()


def test_a_failed_send_of_kept_metrics_keeps_them(tmp_path, monkeypatch):
    import pipeline.tracking.metric_journal as mj

    path = journal_path(tmp_path, "r3")
    path.write_text(json.dumps({"tracking_uri": "http://x", "run_id": "r3", "metrics": [{"key": "k"}]}))

    def down(*_):
        raise ConnectionError("Max retries exceeded")

    monkeypatch.setattr(mj, "_send", down)
    with pytest.raises(ConnectionError) as caught:
        send_kept(tmp_path)
    assert unreachable(caught.value) and path.exists()
