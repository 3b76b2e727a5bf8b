"""`pipeline-store`: check, back up or restore the SQLite run store (mlflow.db). See docs/store.md."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.tracking.store import (
    StoreError,
    backup,
    backups,
    integrity_problems,
    recovery_hint,
    restore,
    schema_version,
    sqlite_path,
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.store",
        description="Check, back up or restore the SQLite run store (mlflow.db).",
    )
    p.add_argument("action", choices=("check", "backup", "restore"))
    p.add_argument("backup_file", nargs="?", type=Path, help="restore: this backup (default: the newest healthy one)")
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="the store (default: from $MLFLOW_TRACKING_URI, else mlflow.db in the project root)",
    )
    args = p.parse_args(argv)
    if args.db is None:
        root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
        args.db = sqlite_path(uri)
        if args.db is None:
            print(
                f"error: {uri} is not a SQLite store; for a PostgreSQL server use pg_dump / pg_restore "
                f"(docs/store.md).",
                file=sys.stderr,
            )
            return 2
    db = args.db
    try:
        if args.action == "restore":
            used, moved = restore(db, args.backup_file)
            print(f"restored {db} from {used}" + (f"; the previous file is kept as {moved}" if moved else ""))
            return 0
        if not db.is_file():
            print(f"error: {db} does not exist (nothing to {args.action}).", file=sys.stderr)
            return 2
        problems = integrity_problems(db)
        if args.action == "check":
            if problems:
                print(f"{db}: DAMAGED\n  " + "\n  ".join(problems) + f"\n{recovery_hint(db)}")
                return 1
            found = backups(db)
            print(
                f"{db}: ok (integrity_check), schema {schema_version(db) or 'none yet'}, "
                f"{len(found)} backup(s)" + (f", newest {found[0].name}" if found else "")
            )
            return 0
        if problems:
            print(
                f"error: {db} is damaged ({problems[0]}); a backup of it would not help. {recovery_hint(db)}",
                file=sys.stderr,
            )
            return 2
        print(f"backed up {db} to {backup(db)}")
        return 0
    except StoreError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
