"""A real `mlflow server` on loopback for the tests: a SQLite store and artifact folder in `folder`,
started, killed and started again on the same port and store (as an outage or a restart is)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import _command_env, free_port

from pipeline.stages.ui import server_env


class MlflowServer:
    def __init__(self, folder: Path, workers: int = 2):
        self.folder, self.workers, self.port = folder, workers, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--backend-store-uri", f"sqlite:///{self.folder}/server.db"),
            *("--artifacts-destination", str(self.folder / "server-artifacts"), "--workers", str(self.workers)),
        ]

    def start(self, timeout: float = 120) -> None:
        """Start it (its own process group) and wait until /health answers; its output goes to server-<n>.log."""
        self.starts += 1
        log_path = self.folder / f"server-{self.starts}.log"
        with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.folder,
                env=server_env(_command_env()),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                assert time.monotonic() < deadline, f"{self.url} did not answer within {timeout}s"
                time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server and its workers (its process group): SIGKILL by default, so that requests in
        flight are neither finished nor answered."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
