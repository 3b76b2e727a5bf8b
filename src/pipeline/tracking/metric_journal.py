"""Training-time metrics kept in the run folder until the tracking store has them.

The training thread only appends to the journal (an atomic local write, never the network), so
an unreachable tracking server neither stops nor slows training. A sender thread sends what is
kept with MLflow's client and removes what the store acknowledged. While sends fail or hang
(MLflow's client retries a dead server for about 4 minutes), a watchdog prints one line at once
and again every 30 s (tracking.outage_report_s).

A metric keeps the timestamp it was logged with: sent twice (a send acknowledged just before a
kill, then sent again from the file), MLflow's SQL store keeps one row, as it treats the same
key/step/timestamp/value as the same metric.

The journal of run R is `<run_dir>/unsent-metrics-R.json`; `send_kept` sends every journal left in
a folder (by a command that ended while the store was down) and removes it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline.common import atomic
from pipeline.common.metric_names import mlflow_name
from pipeline.tracking.client import client

PREFIX = "unsent-metrics-"
REPORT_EVERY_S = 30.0  # the longest silence while the store does not answer (tracking.outage_report_s)
STUCK_AFTER_S = 5.0  # a send that has not returned by then counts as an outage (retries under way)
RETRY_EVERY_S = 2.0  # between failed sends
SEND_TIMEOUT_S = 15.0  # a send not answered by then is tried again (see MetricJournal._attempt)
BATCH = 1000  # log_batch takes at most 1000 metrics a call


def journal_path(run_dir: str | Path, run_id: str) -> Path:
    return Path(run_dir) / f"{PREFIX}{run_id}.json"


def _words(uri: str) -> tuple[str, str, str, str]:
    """How the lines name the store, its fault, its way back, and its return: a server that does not
    answer, or a SQLite file that another process holds locked past MLflow's own 20 s wait."""
    from pipeline.tracking.store import sqlite_path

    db = sqlite_path(uri)
    if db is None:
        return "tracking server", "unreachable", "when it answers", "answers again"
    busy = "busy (another process is writing to it: the MLflow UI, another job, a sqlite3 shell)"
    return f"run store {db}", busy, "when it is free", "is free again"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(path.read_text())["metrics"])
    except FileNotFoundError:
        return []


def answers(uri: str, timeout: float = 5.0) -> bool:
    """Whether a tracking server answers at all (any HTTP status counts); a store that is no server, yes.

    Asked before each send: MLflow's client retries a dead server for about 4 minutes within one call
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES, ..._BACKOFF_FACTOR), and would notice a server that came back
    only at its next retry, up to 2 minutes later."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:  # it answered, if only to refuse
        return True
    except OSError:
        return False


def _send(uri: str, run_id: str, entries: list[dict[str, Any]]) -> None:
    from mlflow.entities import Metric

    if not answers(uri):
        raise ConnectionError(f"{uri} does not answer")

    metrics = [Metric(e["key"], e["value"], e["timestamp"], e["step"]) for e in entries]
    client(uri).log_batch(run_id, metrics=metrics)


class TrackingUnreachable(Exception):
    """Training ended, but the tracking store did not take its results within the wait."""


class MetricJournal:
    """Keep-then-send for one run's metrics; `log` never waits on the store."""

    def __init__(
        self,
        uri: str,
        run_id: str,
        run_dir: str | Path,
        report_every_s: float = REPORT_EVERY_S,
        say: Callable[[str], None] = _say,
    ):
        self.uri, self.run_id, self.path, self.say = uri, run_id, journal_path(run_dir, run_id), say
        self.report_every_s = report_every_s
        self._pending = _load(self.path)  # left by an earlier command of this run: sent first
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        self._send_started: float | None = None  # wall time of the send under way
        self._down_since: float | None = None  # wall time the first failing send started
        self.last_error = ""
        self._sender = threading.Thread(target=self._send_loop, name="metric-journal", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="metric-journal-watchdog", daemon=True)
        self._sender.start()
        self._watchdog.start()
        self._wake.set()

    # -- the training thread --------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Keep `metrics` (at `step`, stamped now) for sending; as Run.log_metrics, without the wait."""
        now = int(time.time() * 1000)
        entries = [
            {"key": mlflow_name(k), "value": float(v), "timestamp": now, "step": step or 0} for k, v in metrics.items()
        ]
        with self._changed:
            self._pending.extend(entries)
            self._save()
        self._wake.set()

    def log_points(self, key: str, points: list[tuple[int, float]]) -> None:
        """Keep one metric at many steps (a curve read off the device once per epoch), in one write."""
        now = int(time.time() * 1000)
        entries = [{"key": mlflow_name(key), "value": float(v), "timestamp": now, "step": int(s)} for s, v in points]
        with self._changed:
            self._pending.extend(entries)
            self._save()
        self._wake.set()

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the store to have everything; True if it has."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._changed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 1.0))
        return True

    def close(self) -> None:
        """Stop sending. What is unsent stays in the file; a send under way may still finish (its thread
        is a daemon: exiting never waits for it)."""
        self._closed = True
        self._wake.set()

    @property
    def unsent(self) -> int:
        with self._changed:
            return len(self._pending)

    @property
    def down_since(self) -> float | None:
        return self._down_since

    # -- the sender and its watchdog ------------------------------------------------------------
    def _save(self) -> None:  # under self._changed
        if self._pending:
            atomic.write_json(self.path, {"tracking_uri": self.uri, "run_id": self.run_id, "metrics": self._pending})
        else:
            self.path.unlink(missing_ok=True)

    def _send_loop(self) -> None:
        while not self._closed:
            self._wake.wait(RETRY_EVERY_S)
            self._wake.clear()
            with self._changed:
                batch = list(self._pending[:BATCH])
            if not batch or self._closed:
                continue
            self._send_started = time.time()
            sent = self._attempt(batch)
            self._send_started = None
            if not sent:
                if self._down_since is None:
                    self._down_since = time.time()
                time.sleep(RETRY_EVERY_S)
                self._wake.set()
                continue
            if self.unsent:
                self._wake.set()

    def _attempt(self, batch: list[dict[str, Any]]) -> bool:
        """One send, given SEND_TIMEOUT_S: a call that hangs (a server that died after the `answers` check
        sits in MLflow's retries for minutes) is left to finish on its own, and the batch is sent again
        once the server answers; the store keeps one row of a metric sent twice."""
        done = threading.Event()
        failed: list[BaseException] = []

        def send() -> None:
            try:
                _send(self.uri, self.run_id, batch)
                self._acknowledge(batch)
            except (Exception, SystemExit) as err:  # any failure: keep it, try again
                failed.append(err)
            done.set()

        threading.Thread(target=send, name="metric-journal-send", daemon=True).start()
        if not done.wait(SEND_TIMEOUT_S):
            self.last_error = f"no answer within {SEND_TIMEOUT_S:.0f} s"
            return False
        if failed:
            self.last_error = (str(failed[0]).splitlines() or [type(failed[0]).__name__])[0][:300]
            return False
        return True

    def _acknowledge(self, batch: list[dict[str, Any]]) -> None:
        """Drop the sent entries (by identity: a late answer to an abandoned send may come after others)."""
        sent = {id(e) for e in batch}
        with self._changed:
            self._pending = [e for e in self._pending if id(e) not in sent]
            self._save()
            if self._down_since is not None:
                self._down_since = None
                name, _, _, back = _words(self.uri)
                self.say(f"[tracking] {name} {back}: the kept metrics of run {self.run_id} were sent")
            self._changed.notify_all()

    def _watch(self) -> None:
        said_at: float | None = None
        while not self._closed:
            time.sleep(0.5)
            started = self._send_started
            if self._down_since is None and started is not None and time.time() - started > STUCK_AFTER_S:
                self._down_since = started
            since = self._down_since
            if since is None:
                said_at = None
            elif said_at is None:
                said_at = time.monotonic()
                name, fault, when, _ = _words(self.uri)
                self.say(
                    f"[tracking] {name} {fault} since {_clock(since)}; metrics kept in {self.path}; "
                    f"they are sent {when}"
                )
            elif time.monotonic() - said_at >= self.report_every_s:
                said_at = time.monotonic()
                name, fault, _, _ = _words(self.uri)
                self.say(
                    f"[tracking] {name} still {fault.split(' (')[0]} (since {_clock(since)}, "
                    f"{(time.time() - since) / 60:.1f} min); {self.unsent} metrics kept in {self.path}"
                )


def unreachable(err: BaseException) -> bool:
    """Whether `err` says that the tracking server did not answer (rather than refused a request)."""
    cur: BaseException | None = err
    while cur is not None:
        if isinstance(cur, TrackingUnreachable) or "Max retries exceeded" in str(cur):
            return True
        if type(cur).__module__.split(".")[0] in ("requests", "urllib3"):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def kept_journals(run_dir: str | Path) -> list[Path]:
    return sorted(Path(run_dir).glob(f"{PREFIX}*.json"))


def send_kept(run_dir: str | Path) -> int:
    """Send the metrics a command left unsent in `run_dir` (with their own steps and timestamps) and
    remove their journals; returns how many were sent. Raises if the store does not take them: the
    journals stay for the next try."""
    sent = 0
    for path in kept_journals(run_dir):
        kept = json.loads(path.read_text())
        entries = kept["metrics"]
        for i in range(0, len(entries), BATCH):
            _send(kept["tracking_uri"], kept["run_id"], entries[i : i + BATCH])
        path.unlink()
        sent += len(entries)
        _say(f"[tracking] sent {len(entries)} metrics kept in {path} to run {kept['run_id']}")
    return sent
