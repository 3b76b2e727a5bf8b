"""A sweep under sustained load survives its tracking server being restarted twice.

12 tiny jobs, 4 at a time (joblib), log to `mlflow server` on loopback (SQLite backend store). The
server is killed outright (SIGKILL: in-flight requests get no answer) twice while jobs train and
write, and started again a few seconds later on the same port and store. Every job must still end
FINISHED with each epoch's metrics exactly once, no run may be doubled, and the parent must end
FINISHED with the true counts. The figures (time, downtimes, client retries) are printed (-s).
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import _command_env
from mlflow_server import MlflowServer

from pipeline.common.metric_names import EPOCH_METRICS, TEST_ACC, mlflow_name

JOBS, AT_A_TIME, EPOCHS = 12, 4, 2
TINY_JOB = [
    "data.train_subset=300",
    f"trainer.max_epochs={EPOCHS}",
    "data.batch_size=100",
    "tracking.log_model=false",
]
DOWN_S = 3.0  # how long the server stays dead before it is started again


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path)
    try:
        yield server
    finally:
        server.kill()


class LosesOneAnswer(http.server.BaseHTTPRequestHandler):
    """A proxy to the server that forwards every request, but answers the first one to `lose`
    (a path's end) by closing the connection: the server did the work, the client never hears."""

    upstream = ""
    lose = ""
    lost: ClassVar[list[str]] = []

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
        request = urllib.request.Request(self.upstream + self.path, body or None, headers, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, content, kind = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            status, content, kind = err.code, err.read(), err.headers.get("Content-Type", "")
        if self.path.split("?")[0].endswith(self.lose) and not self.lost:
            self.lost.append(self.path)
            self.close_connection = True  # done upstream, and no answer
            return
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.mark.slow
def test_a_run_whose_creation_lost_its_answer_is_created_once(server):
    server.start()
    handler = type("Handler", (LosesOneAnswer,), {"upstream": server.url, "lose": "/runs/create", "lost": []})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        from pipeline.tracking.runs import create_run

        run = create_run(f"http://127.0.0.1:{proxy.server_address[1]}", "mnist", "once", {"seed": "1"})
    finally:
        proxy.shutdown()
    assert handler.lost == ["/api/2.0/mlflow/runs/create"]
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("mnist").experiment_id
    runs = client.search_runs([experiment], run_view_type=ViewType.ALL)
    assert [r.info.run_id for r in runs] == [run.run_id]


def _count(path: Path, pattern: str) -> int:
    return len(re.findall(pattern, path.read_text(errors="replace")))


@pytest.mark.slow
def test_twelve_jobs_four_at_a_time_survive_two_server_restarts(tmp_path, mnist_root, server):
    server.start()
    log = tmp_path / "sweep.log"
    started = time.monotonic()
    with log.open("w") as out:
        sweep = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.stages.train",
                "-m",
                f"seed={','.join(str(s) for s in range(1, JOBS + 1))}",
                *TINY_JOB,
                "hydra/launcher=joblib",
                f"hydra.launcher.n_jobs={AT_A_TIME}",
                f"tracking.uri={server.url}",
                f"data.root={mnist_root}",
                f"hydra.sweep.dir={tmp_path / 'multirun'}",
            ],
            cwd=tmp_path,
            env=_command_env({"OMP_NUM_THREADS": "1"}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # Restart 1: the first wave is training and logging its epochs. Restart 2: the jobs of a later
    # wave are (some have finished, others train, evaluate or write).
    triggers = [
        ("first wave training", lambda: _count(log, r"\[train\] epoch 1/") >= 2),
        ("later wave training", lambda: _count(log, r"\[train\] epoch 1/") >= AT_A_TIME + 2),
    ]
    downtimes: list[float] = []
    moments: list[str] = []
    try:
        while sweep.poll() is None and triggers:
            name, due = triggers[0]
            if due():
                triggers.pop(0)
                killed = time.monotonic()
                server.kill()
                time.sleep(DOWN_S)
                server.start()
                downtimes.append(time.monotonic() - killed)
                moments.append(f"{name} at {killed - started:.0f}s")
            time.sleep(0.2)
        sweep.wait(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    retries = len(re.findall(r"Retrying \(", text))
    print(
        f"\n[load] {JOBS} jobs, {AT_A_TIME} at a time: {elapsed:.0f}s; {len(downtimes)} restarts "
        f"({', '.join(moments)}), down {', '.join(f'{d:.1f}s' for d in downtimes)}; "
        f"{retries} client retries logged"
    )
    assert not triggers, f"the sweep ended before restart '{triggers[0][0]}':\n{text[-4000:]}"
    assert sweep.returncode == 0, text[-6000:]

    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("mnist").experiment_id
    runs = client.search_runs([experiment], run_view_type=ViewType.ALL, max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(runs) == JOBS + 1, [(r.info.run_name, r.info.status) for r in runs]
    parent = parents[0]
    # exactly one run per job: by seed (param and tag) and by name
    seeds = list(range(1, JOBS + 1))
    assert sorted(int(c.data.params["seed"]) for c in children) == seeds
    assert sorted(int(c.data.tags["seed"]) for c in children) == seeds
    assert len({c.info.run_name for c in children}) == JOBS
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    curves = {mlflow_name(k) for k in EPOCH_METRICS}
    for child in children:
        assert child.info.status == "FINISHED", (child.info.run_name, child.info.status)
        assert 0.1 < child.data.metrics[TEST_ACC] <= 1.0
        logged = {k for k in child.data.metrics if k.startswith("curves/")}
        assert curves <= logged, (child.info.run_name, logged)
        for key in logged:  # every epoch exactly once: a retried write left no second copy
            steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, key))
            assert steps == list(range(1, EPOCHS + 1)), (child.info.run_name, key, steps)
        assert len(client.get_metric_history(child.info.run_id, TEST_ACC)) == 1
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep/jobs"] == JOBS and parent.data.metrics["sweep/failed"] == 0


class CommitsThenHangsUp:
    """A client whose first create_run makes the run and then fails as a lost answer does."""

    def __init__(self, error):
        self.runs: list = []
        self.error = error
        self.resends_during_create: list[str | None] = []

    def create_run(self, experiment_id, run_name, tags):
        from types import SimpleNamespace

        self.resends_during_create.append(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"))
        run = SimpleNamespace(info=SimpleNamespace(run_id=f"run-{len(self.runs)}"), data=SimpleNamespace(tags=tags))
        self.runs.append(run)
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return run

    def search_runs(self, experiment_ids, filter_string):
        from pipeline.tracking.once import CREATE_KEY_TAG

        return [r for r in self.runs if f"'{r.data.tags[CREATE_KEY_TAG]}'" in filter_string]


def test_a_lost_answer_to_create_run_finds_the_run_instead_of_making_another(monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    from pipeline.tracking import once

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    lost = MlflowException("API request to http://x/api/2.0/mlflow/runs/create failed: RemoteDisconnected")
    c = CommitsThenHangsUp(lost)
    run = once.create_run(c, "http://x", "1", "job", {"seed": "1"})  # type: ignore[arg-type]
    assert [r.info.run_id for r in c.runs] == [run.info.run_id]
    assert c.resends_during_create == ["0"] and os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
    # a refusal is no lost answer: it is not tried again
    refused = CommitsThenHangsUp(MlflowException("no such experiment", error_code=RESOURCE_DOES_NOT_EXIST))
    with pytest.raises(MlflowException, match="no such experiment"):
        once.create_run(refused, "http://x", "1", "job", {})  # type: ignore[arg-type]
    # a local store sends no request: no key, no lookup
    local = CommitsThenHangsUp(None)
    assert once.create_run(local, "sqlite:///x.db", "1", "job", {}).data.tags == {}  # type: ignore[arg-type]
