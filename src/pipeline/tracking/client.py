"""Where the store is and how to reach it: the URI, the artifact folder, one cached client per store.

Store: `tracking.uri` if set, else $MLFLOW_TRACKING_URI, else a SQLite database
`mlflow.db` in the project root with artifacts in `mlartifacts/` beside it
(MLflow 3 no longer accepts a bare file store by default). The project root is
the working directory, or $DVC_ROOT under DVC: queued experiments run in
temporary copies of the repository, and their runs belong in the same store.

A SQLite store is checked once per process before MLflow opens it (store.py: its
health and backups; schema.py: migrating an older MLflow schema).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

# No usage reports leave the machine (and none can: runs are often offline).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Progress bars for artifact downloads only clutter logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "mlartifacts"


def import_store_code() -> None:
    """Import MLflow's client and its SQL store (seconds of imports) without opening any store, so
    that a command can do it while the garbage collector sits out its start-up."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from mlflow.tracking import MlflowClient  # noqa: F401


def resolve_uri(configured: str | None = None) -> str:
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return f"sqlite:///{(root / DB_NAME).resolve()}"


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite database; servers decide for themselves."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return (db.parent / ARTIFACTS_NAME).resolve().as_uri()
    return None


@functools.cache
def client(uri: str) -> MlflowClient:
    """One client per store and process: building one costs seconds (it loads the store's plugins)."""
    from mlflow.tracking import MlflowClient

    check_store(uri)
    if uri.startswith(("http://", "https://")):
        from pipeline.tracking.broken_answers import ResendingClient

        show_resends()
        return ResendingClient(tracking_uri=uri, registry_uri=uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def show_resends() -> None:
    """One line on stderr per request MLflow's client resends to a server that did not answer.

    urllib3 logs each resend as a warning, but its NullHandler keeps the line out of a command's
    output: a job waiting out a server restart (up to minutes) would pause for no visible reason.
    Not where the root logger has handlers (they show it already)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if logging.getLogger().handlers or any(h.get_name() == "pipeline-resends" for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name("pipeline-resends")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("[tracking] %(message)s"))
    logger.addHandler(handler)


_checked_stores: set[str] = set()
_lock_timeout_s: list[float] = []  # tracking.lock_timeout_s of the command's config, once it is known


def set_lock_timeout(seconds: float | None) -> None:
    """How long a busy SQLite store is waited on before the command stops (store.py)."""
    _lock_timeout_s[:] = [] if seconds is None else [float(seconds)]


def check_store(uri: str) -> None:
    """Once per process: stop on a damaged SQLite store, back it up when due, and back it
    up before migrating an older MLflow schema (MLflow would refuse it otherwise). See store.py."""
    from pipeline.tracking import schema, store

    db = store.sqlite_path(uri)
    if uri in _checked_stores or db is None:
        return
    store.guard(db, *_lock_timeout_s)
    if db.is_file() and db.stat().st_size:
        schema.migrate_with_backup(db, uri)
    _checked_stores.add(uri)
