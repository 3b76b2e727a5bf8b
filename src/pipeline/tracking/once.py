"""Run creation that a lost answer cannot double, on a tracking server.

MLflow's client resends every request whose connection fails, POSTs included
(MLFLOW_HTTP_REQUEST_MAX_RETRIES, 7 by default, backing off for about 4 minutes in all), so a
server restart costs a job a pause, not its run. Resending is harmless for the other writes
(tags and params overwrite; a resent log_batch carries the same timestamps and the SQL store
drops the copies; ending a run and uploading an artifact are idempotent), but not for create_run:
a server that committed the run and died before answering creates a second one on the resend
(seen under load: a sweep job with two runs, one left RUNNING, its parent counting 13 jobs of 12).

Here the run carries a key of our own (a tag), its creation is tried once without MLflow's
resends, and after a failed try the store is asked (with resends, which wait the outage out)
for a run with that key before it is tried again.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run as MlflowRun

CREATE_KEY_TAG = "pipeline.create_key"
_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"  # read by MLflow on every request
ATTEMPTS = 5


def create_run(c: MlflowClient, uri: str, experiment_id: str, name: str, tags: Mapping[str, str]) -> MlflowRun:
    """`c.create_run(...)`, made once even if the server dies between committing and answering."""
    if not uri.startswith(("http://", "https://")):  # a local store: no request to lose
        return c.create_run(experiment_id, run_name=name, tags=dict(tags))
    key = uuid.uuid4().hex
    tags = {**tags, CREATE_KEY_TAG: key}
    tries = 0
    while True:
        try:
            with _no_resends():
                return c.create_run(experiment_id, run_name=name, tags=tags)
        except Exception as err:
            tries += 1
            if tries == ATTEMPTS or not _transient(err):
                raise
        found = c.search_runs([experiment_id], filter_string=f"tags.`{CREATE_KEY_TAG}` = '{key}'")
        if found:  # the server made it and the answer was lost
            return found[0]
        time.sleep(0.5 * 2**tries)  # the search waited for the server; it answers, but may be busy


@contextlib.contextmanager
def _no_resends() -> Iterator[None]:
    """MLflow's resends off for the requests of this block. Process-wide for its duration: runs are
    created before a stage starts the threads that write (the system-metrics monitor)."""
    before = os.environ.get(_RETRIES_ENV)
    os.environ[_RETRIES_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_RETRIES_ENV, None)
        else:
            os.environ[_RETRIES_ENV] = before


def _transient(err: BaseException) -> bool:
    """A failure worth another try: no connection, no answer, or a server error (5xx, 429)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(err, MlflowException):
        return True
    return err.get_http_status_code() >= 500 or err.error_code in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")
