"""A tracking server's answer cut off half-way (the server killed as it answers) is asked for again,
for idempotent calls only; MLflow's own client does not resend it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from pipeline.tracking import broken_answers
from pipeline.tracking.broken_answers import ResendingClient, broke_off


class _CutsOffFirstAnswers(BaseHTTPRequestHandler):
    """Answers `{}` to every request, but the first `cut` answers break off after their headers."""

    cut = 1
    requests: ClassVar[list[str]] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests.append(self.path)
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if len(self.requests) <= self.cut:
            self.send_header("Content-Length", str(len(body) + 100))  # promises more than it sends
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(broken_answers.time, "sleep", lambda s: None)
    _CutsOffFirstAnswers.requests = []
    _CutsOffFirstAnswers.cut = 1
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CutsOffFirstAnswers)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _log(client: MlflowClient) -> None:
    client.log_batch("0" * 32, metrics=[Metric("val/acc", 0.9, 1, 1)])


def test_mlflow_alone_fails_on_an_answer_that_breaks_off(server):
    with pytest.raises(MlflowException) as caught:
        _log(MlflowClient(tracking_uri=server))
    assert broke_off(caught.value)
    assert _CutsOffFirstAnswers.requests == ["/api/2.0/mlflow/runs/log-batch"]  # never resent


def test_an_idempotent_call_is_sent_again_and_says_so(server, capsys):
    _CutsOffFirstAnswers.cut = 2
    _log(ResendingClient(tracking_uri=server))
    assert _CutsOffFirstAnswers.requests == ["/api/2.0/mlflow/runs/log-batch"] * 3
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "[tracking] the server's answer to log_batch broke off; sending it again (1 of 4)",
        "[tracking] the server's answer to log_batch broke off; sending it again (2 of 4)",
    ]


def test_it_gives_up_after_its_attempts(server):
    _CutsOffFirstAnswers.cut = broken_answers.ATTEMPTS
    with pytest.raises(MlflowException):
        _log(ResendingClient(tracking_uri=server))
    assert len(_CutsOffFirstAnswers.requests) == broken_answers.ATTEMPTS


def test_a_call_that_is_not_idempotent_is_not_resent(server):
    with pytest.raises(MlflowException):
        ResendingClient(tracking_uri=server).create_run("0")  # a second run on a resend: once.py's job
    assert len(_CutsOffFirstAnswers.requests) == 1


def test_other_failures_are_not_resent():
    assert not broke_off(MlflowException("RESOURCE_DOES_NOT_EXIST"))
    assert not broke_off(ConnectionError("refused"))


def test_every_resent_name_is_a_method_of_mlflows_client():
    assert all(callable(getattr(MlflowClient, name, None)) for name in broken_answers.IDEMPOTENT)
