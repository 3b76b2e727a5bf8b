"""The SQLite run store's health: check it, back it up, restore it.

    python -m pipeline.stages.store check            # SQLite's own integrity_check on mlflow.db
    python -m pipeline.stages.store backup           # an online backup into mlflow.db.backups/
    python -m pipeline.stages.store restore [FILE]   # the newest healthy backup (or FILE) replaces the store

Only sqlite3 here (no MLflow): `client.check_store` calls `guard` once per
process before any MLflow call touches the store. The guard costs a file stat
and a 100-byte header read when nothing is due, so every command can afford it:

* a store shorter than its header says (cut off by a crash or a full disk), or
  no SQLite file at all, stops the command with one message naming the file,
  the problem and the commands that recover it (exit status 2, no traceback);
* a store that another process is writing to is waited on (tracking.lock_timeout_s, default
  120 s) with a line that says so, then refused with one message naming the file and the cause;
* at most once an hour it runs `PRAGMA quick_check` and, if the store is
  healthy, takes a backup with SQLite's online backup API (the last KEEP kept);
* before MLflow's schema migration runs, a backup is taken (see schema.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BACKUP_DIR_SUFFIX = ".backups"
KEEP = 5
INTERVAL_S = 3600
HEADER = b"SQLite format 3\x00"


class StoreError(SystemExit):
    """The store cannot be used as it is. Exits with status 2: the message was printed already,
    so a command stops cleanly wherever the store is first touched (inside Hydra or Lightning too)."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` store; None for servers and other databases."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def backup_dir(db: Path) -> Path:
    return db.with_name(db.name + BACKUP_DIR_SUFFIX)


def backups(db: Path) -> list[Path]:
    """Backups of `db`, newest first."""
    folder = backup_dir(db)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{db.stem}-*.db"), key=lambda p: p.name, reverse=True)


def recovery_hint(db: Path) -> str:
    here = f" --db {db}" if db.resolve() != (Path.cwd() / db.name).resolve() else ""
    found = backups(db)
    newest = f"newest backup: {found[0].name}" if found else f"no backup in {backup_dir(db)}/"
    return (
        f"Recover with `python -m pipeline.stages.store restore{here}` ({newest}; the damaged file is kept "
        f"beside it), or move the file away to start an empty store. "
        f"`python -m pipeline.stages.store check{here}` shows what SQLite finds."
    )


def header_problem(db: Path) -> str | None:
    """Damage visible without reading the database: wrong magic, or shorter than its header says.

    SQLite keeps the page size (offset 16) and the page count (offset 28) in the
    first 100 bytes; a truncated copy fails page_size * page_count <= size at once.
    """
    try:
        size = db.stat().st_size
        if size == 0:  # SQLite's own "empty database": MLflow creates the tables in it
            return None
        with db.open("rb") as f:
            head = f.read(100)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if len(head) < 100 or not head.startswith(HEADER):
        return "is not an SQLite database (its header is missing or overwritten)"
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", head[28:32])[0]
    if pages and page_size * pages > size:
        return (
            f"is truncated: its header describes {page_size * pages:,} bytes but the file has {size:,} "
            f"(a crash or a full disk cut it short)"
        )
    return None


def _roll_back_interrupted_write(db: Path) -> None:
    """A writer killed mid-transaction leaves a hot journal that only a read-write connection may roll
    back (SQLite does so on its first read); read-only, the store would look damaged ('attempt to
    write a readonly database') when it is merely interrupted."""
    journal = db.with_name(db.name + "-journal")
    if not (journal.is_file() and journal.stat().st_size):
        return
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            con.execute("PRAGMA schema_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        pass  # a read-only folder: the read-only check then reports what it finds


def _connect_readonly(db: Path) -> sqlite3.Connection:
    _roll_back_interrupted_write(db)
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def integrity_problems(db: Path, quick: bool = False, limit: int = 10) -> list[str]:
    """What SQLite's `PRAGMA integrity_check` (or the faster quick_check) finds; [] when healthy."""
    problem = header_problem(db)
    if problem:
        return [f"the file {problem}"]
    pragma = "quick_check" if quick else "integrity_check"
    try:
        con = _connect_readonly(db)
        try:
            rows = [r[0] for r in con.execute(f"PRAGMA {pragma}({limit})")]
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        return [str(err)]
    return [] if rows == ["ok"] else rows


def schema_version(db: Path) -> str | None:
    """The store's MLflow schema revision (alembic_version), None for a store without tables yet."""
    try:
        con = _connect_readonly(db)
        try:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:  # no such table: empty or brand-new store
        return None
    return row[0] if row else None


def backup(db: Path, reason: str = "manual") -> Path:
    """Copy the live store with SQLite's online backup API into <db>.backups/; keep the newest KEEP.

    Written to a temporary file and renamed: a backup is either whole or absent.
    """
    folder = backup_dir(db)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")  # names sort by time
    target = folder / f"{db.stem}-{stamp}-{reason}.db"
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        _copy(db, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    for old in backups(db)[KEEP:]:
        old.unlink(missing_ok=True)
    return target


def _copy(source: Path, target: Path) -> None:
    """SQLite's online backup of `source` into `target`: a consistent copy even while it is written."""
    src = _connect_readonly(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup_due(db: Path, interval_s: float = INTERVAL_S) -> bool:
    found = backups(db)
    return not found or time.time() - found[0].stat().st_mtime >= interval_s


def restore(db: Path, source: Path | None = None) -> tuple[Path, Path | None]:
    """Replace `db` with `source` (default: the newest backup that passes integrity_check).

    The damaged store and its journal files are moved aside, never deleted; the
    backup is copied to a temporary file beside the store, checked, then renamed.
    Returns (backup used, where the old store went).
    """
    candidates = [source] if source else backups(db)
    chosen = next((c for c in candidates if c.is_file() and not integrity_problems(c)), None)
    if chosen is None:
        what = f"{source} is missing or damaged" if source else f"no healthy backup in {backup_dir(db)}/"
        raise StoreError(f"cannot restore {db}: {what}.")
    tmp = db.with_name(f".{db.name}.restore.{os.getpid()}.tmp")
    try:
        _copy(chosen, tmp)
        moved = None
        if db.exists():
            moved = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
            os.replace(db, moved)
        for suffix in ("-journal", "-wal", "-shm"):  # a stale journal would be replayed into the restored file
            side = db.with_name(db.name + suffix)
            if side.exists():
                os.replace(side, (moved or db).with_name((moved or db).name + suffix))
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
    return chosen, moved


def damaged(db: Path, problem: str) -> StoreError:
    message = f"the run store {db} {problem}. {recovery_hint(db)}"
    print(f"error: {message}", file=sys.stderr, flush=True)
    return StoreError(message)


LOCK_TIMEOUT_S = 120.0  # tracking.lock_timeout_s
BUSY_CAUSE = "another process is writing to it (the MLflow UI, another job, a sqlite3 shell in a transaction)"


def can_write(db: Path, wait_s: float) -> bool:
    """Whether a write transaction can start within wait_s (SQLite's own busy wait, no polling)."""
    con = sqlite3.connect(db, timeout=wait_s)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError as err:
        # Another problem (a read-only file) is not a lock: MLflow reports it in its own words.
        return "locked" not in str(err) and "busy" not in str(err)
    finally:
        con.close()


def wait_until_writable(db: Path, timeout_s: float) -> None:
    """A store that another process holds is waited on, with a line that says so, rather than
    failed on mid-run; after timeout_s, one message names the file and the likely cause."""
    if can_write(db, min(1.0, timeout_s)):
        return
    print(
        f"[tracking] {db} is busy: {BUSY_CAUSE}; waiting up to {timeout_s:.0f} s (tracking.lock_timeout_s)",
        file=sys.stderr,
        flush=True,
    )
    if can_write(db, max(timeout_s - 1.0, 0.0)):
        print(f"[tracking] {db} is free again", file=sys.stderr, flush=True)
        return
    raise locked(db, timeout_s)


def locked(db: Path, waited_s: float | None = None) -> StoreError:
    waited = f" for {waited_s:.0f} s" if waited_s is not None else ""
    message = (
        f"the run store {db} stayed locked{waited}: {BUSY_CAUSE}. Let it finish or stop it, then run the "
        "same command again (an interrupted training resumes); tracking.lock_timeout_s=<seconds> waits longer."
    )
    print(f"error: {message}", file=sys.stderr, flush=True)
    return StoreError(message)


def is_lock_error(err: BaseException) -> bool:
    """Whether SQLite's "database is locked" is behind err (MLflow wraps it in its own errors)."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if "database is locked" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


class _LockErrorsAreOurs(logging.Filter):
    """MLflow logs each failed write with its traceback (logger mlflow.store.db.utils) before
    raising; a lock is reported once, by `locked`, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        return err is None or not is_lock_error(err)


def quiet_lock_tracebacks() -> None:
    target = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _LockErrorsAreOurs) for f in target.filters):
        target.addFilter(_LockErrorsAreOurs())


def guard(db: Path, lock_timeout_s: float = LOCK_TIMEOUT_S) -> Path | None:
    """Stop on a damaged store; wait for a busy one; take the hourly backup when one is due.
    Returns a new backup, if any."""
    if not db.is_file():
        return None  # MLflow creates it
    problem = header_problem(db)
    if problem:
        raise damaged(db, problem)
    wait_until_writable(db, lock_timeout_s)
    if db.stat().st_size == 0 or not backup_due(db):
        return None
    problems = integrity_problems(db, quick=True)
    if problems:
        raise damaged(db, f"fails SQLite's quick_check: {'; '.join(problems[:3])}")
    try:
        return backup(db, "hourly")
    except (OSError, sqlite3.Error) as err:  # a backup that cannot be written must not stop the work
        print(f"warning: could not back up {db} into {backup_dir(db)}/: {err}", file=sys.stderr)
        return None
