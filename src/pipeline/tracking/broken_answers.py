"""A tracking server's answer that breaks off half-read is asked for again.

MLflow's client resends a request whose connection fails or that gets no answer (urllib3's
retries, see once.py), but not one whose answer breaks off while it is read: a server killed as
it answers leaves requests' ChunkedEncodingError ("Connection broken: IncompleteRead"), and the
command failed with it (seen: a sweep job's log_batch as the server restarted under load).
The calls resent here are idempotent (tags and params overwrite, the SQL store drops a resent
metric's copy, ending a run and uploading an artifact give the same result twice), so each is
sent again after a short back-off. Run creation and model versions are not: once.py and the
registry's own checks cover those.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

ATTEMPTS = 5
IDEMPOTENT = (
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_text",
    "search_runs",
    "set_tag",
    "set_terminated",
    "update_run",
)


def broke_off(err: BaseException) -> bool:
    """True for a failure whose cause is an answer cut off mid-way (MLflow wraps it without `from`)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, requests.exceptions.ChunkedEncodingError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _resent(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: MlflowClient, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return method(self, *args, **kwargs)
            except MlflowException as err:
                if attempt == ATTEMPTS or not broke_off(err):
                    raise
                print(
                    f"[tracking] the server's answer to {method.__name__} broke off; sending it again "
                    f"({attempt} of {ATTEMPTS - 1})",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    return call


class ResendingClient(MlflowClient):
    """MlflowClient whose idempotent calls survive an answer that breaks off (for http(s) stores)."""


for _name in IDEMPOTENT:
    setattr(ResendingClient, _name, _resent(getattr(MlflowClient, _name)))
