"""MLflow's database schema of a SQLite store: bring a store an older MLflow wrote up to date.

The head revision comes from MLflow's own migration scripts (read with alembic's public API);
the upgrade is MLflow's public command `mlflow db upgrade`, run after store.py took a backup.
A store a newer MLflow wrote is refused with the way out (upgrade MLflow, or restore a backup).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config() -> Config:
    """The alembic configuration of MLflow's migration scripts (no database: it only reads scripts)."""
    import mlflow
    from alembic.config import Config

    migrations = Path(mlflow.__file__).parent / "store" / "db_migrations"
    config = Config(str(migrations / "alembic.ini"))
    config.set_main_option("script_location", str(migrations))
    return config


def head_revision() -> str:
    """The schema revision the installed MLflow writes."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"MLflow's migration scripts have {len(heads)} heads ({heads}); expected one")
    return heads[0]


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def migrate_with_backup(db: Path, uri: str) -> None:
    """Upgrade `db` to the installed MLflow's schema, after a backup; refuse a schema from a newer MLflow."""
    import mlflow

    from pipeline.tracking import store

    found = store.schema_version(db)
    # The head revision costs ~25 ms to compute: remember it per MLflow version beside the backups.
    known = store.backup_dir(db) / f".schema-head-{mlflow.__version__}"
    head = known.read_text().strip() if known.is_file() else None
    if found is None or found == head:
        return
    head = head_revision()
    if found != head:
        if found not in known_revisions():
            raise store.damaged(
                db,
                f"has MLflow schema {found}, which MLflow {mlflow.__version__} does not know "
                f"(a newer MLflow wrote it): upgrade MLflow, or restore a backup",
            )
        saved = store.backup(db, f"before-schema-{head}")
        print(
            f"[store] {db}: schema {found} -> {head} (MLflow {mlflow.__version__}); backup first: {saved}",
            file=sys.stderr,
            flush=True,
        )
        upgrade = subprocess.run(
            [sys.executable, "-m", "mlflow", "db", "upgrade", uri], capture_output=True, text=True, check=False
        )
        if upgrade.returncode != 0:
            raise store.damaged(
                db,
                f"could not be upgraded from MLflow schema {found} to {head} "
                f"(`mlflow db upgrade` said: {upgrade.stderr.strip()[-2000:]}); the backup {saved} holds it as it was",
            )
    try:
        known.parent.mkdir(parents=True, exist_ok=True)
        known.write_text(head + "\n")
    except OSError:  # a read-only folder: the head is computed again next time, nothing worse
        pass
