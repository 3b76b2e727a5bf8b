"""The run store's health: a damaged mlflow.db stops every command with a way out;
backups are taken (hourly, before a schema migration) and restored whole."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import run_module

from pipeline.stages import store as store_command
from pipeline.tracking import client as tracking_client
from pipeline.tracking import schema, store
from pipeline.tracking.runs import experiment_id


@pytest.fixture(scope="module")
def healthy_store(tmp_path_factory) -> Path:
    """A real MLflow SQLite store holding three runs with metrics."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    uri = f"sqlite:///{db}"
    c = tracking_client.client(uri)
    exp = experiment_id(c, "mnist", uri)
    for i in range(3):
        run = c.create_run(exp, run_name=f"run-{i}")
        c.log_metric(run.info.run_id, "test/acc", 0.9 + i / 100)
        c.set_terminated(run.info.run_id)
    tracking_client._checked_stores.discard(uri)
    shutil.rmtree(store.backup_dir(db), ignore_errors=True)  # each test starts without backups
    return db


@pytest.fixture
def db(healthy_store, tmp_path) -> Path:
    copy = tmp_path / "mlflow.db"
    shutil.copy(healthy_store, copy)
    return copy


def runs_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return sorted(r[0] for r in con.execute("SELECT name FROM runs"))


def cut_in_half(db: Path) -> None:
    os.truncate(db, db.stat().st_size // 2)


def test_header_check_finds_truncated_and_overwritten_files(db):
    assert store.header_problem(db) is None
    cut_in_half(db)
    assert "truncated" in store.header_problem(db)
    db.write_bytes(b"x" * 4096)
    assert "not an SQLite database" in store.header_problem(db)


def test_check_backup_restore_round_trip(db, capsys):
    assert store_command.main(["check", "--db", str(db)]) == 0
    assert ": ok (integrity_check)" in capsys.readouterr().out

    assert store_command.main(["backup", "--db", str(db)]) == 0
    (saved,) = store.backups(db)
    assert runs_in(saved) == ["run-0", "run-1", "run-2"]

    cut_in_half(db)
    assert store_command.main(["check", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "truncated" in out and "python -m pipeline.stages.store restore" in out

    assert store_command.main(["restore", "--db", str(db)]) == 0
    assert runs_in(db) == ["run-0", "run-1", "run-2"]
    assert store.integrity_problems(db) == []
    kept = list(db.parent.glob("mlflow.db.damaged-*"))
    assert len(kept) == 1 and kept[0].stat().st_size == saved.stat().st_size // 2  # the damaged file is kept


def test_integrity_check_finds_damage_inside_the_file(db):
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA writable_schema=ON")  # nothing else lets an index disagree with its table
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE type='index' AND tbl_name='runs'").fetchone()[0]
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
    with db.open("r+b") as f:  # zero an index page, as a torn write would
        f.seek((root - 1) * page_size + 8)
        f.write(b"\x00" * (page_size - 8))
    assert store.header_problem(db) is None  # the size is right: only SQLite's own check sees it
    assert store.integrity_problems(db) != []
    with pytest.raises(store.StoreError) as err:
        store.guard(db)  # no backup yet, so the hourly quick_check runs
    assert "quick_check" in err.value.message and str(db) in err.value.message
    assert store.backups(db) == []  # a damaged store never rotates out a good backup


def test_a_writer_killed_mid_transaction_is_not_damage(tmp_path):
    """A hot journal (a writer died inside a transaction) is rolled back, not reported as damage."""
    live = tmp_path / "live.db"
    con = sqlite3.connect(live)
    con.execute("CREATE TABLE t (x BLOB)")
    con.executemany("INSERT INTO t VALUES (?)", [(os.urandom(4000),) for _ in range(200)])
    con.commit()
    con.execute("PRAGMA cache_size=1")  # pages spill into the journal before the commit
    con.execute("BEGIN")
    con.execute("UPDATE t SET x = zeroblob(4000)")
    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("live.db", "live.db-journal"):  # the files as a killed process leaves them
        shutil.copy(tmp_path / name, killed / name)
    con.rollback()
    con.close()
    db = killed / "live.db"
    assert (killed / "live.db-journal").stat().st_size > 0
    assert store.integrity_problems(db, quick=True) == []
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t WHERE x = zeroblob(4000)").fetchone() == (0,)


def test_restore_writes_nothing_half_way(db, monkeypatch):
    store.backup(db)
    before = db.read_bytes()
    real_replace = os.replace

    def fail_on_rename_into_place(src, dst):
        if Path(dst) == db and ".restore." in str(src):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_rename_into_place)
    with pytest.raises(OSError):
        store.restore(db)
    monkeypatch.undo()
    leftovers = [p.name for p in db.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []
    # The store was moved aside before the failed rename: the damaged-copy is the whole old store.
    (kept,) = db.parent.glob("mlflow.db.damaged-*")
    assert kept.read_bytes() == before


def test_restore_without_healthy_backup_names_the_problem(db, capsys):
    cut_in_half(db)
    assert store_command.main(["restore", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "no healthy backup" in err and str(store.backup_dir(db)) in err
    assert db.is_file()  # nothing moved when there is nothing to restore


def test_guard_backs_up_at_most_hourly_and_keeps_the_last_few(db):
    first = store.guard(db)
    assert first is not None and runs_in(first) == ["run-0", "run-1", "run-2"]
    assert store.guard(db) is None  # within the hour: nothing to do
    for _i in range(store.KEEP + 2):
        newest = store.backups(db)[0]
        old = time.time() - store.INTERVAL_S - 60
        os.utime(newest, (old, old))
        assert store.guard(db) is not None
    assert len(store.backups(db)) == store.KEEP


def test_schema_migration_is_preceded_by_a_backup(db):
    import sqlalchemy
    from alembic import command

    uri = f"sqlite:///{db}"
    head = store.schema_version(db)
    engine = sqlalchemy.create_engine(uri)
    with engine.begin() as conn:  # the store as an older MLflow left it
        config = schema.alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "-1")
    engine.dispose()
    older = store.schema_version(db)
    assert older != head

    tracking_client.check_store(uri)
    assert store.schema_version(db) == head
    (saved,) = [b for b in store.backups(db) if "before-schema" in b.name]
    assert store.schema_version(saved) == older and runs_in(saved) == ["run-0", "run-1", "run-2"]
    assert [r.info.run_name for r in tracking_client.client(uri).search_runs(["1"])]  # MLflow opens it


def test_a_schema_from_a_newer_mlflow_is_refused_with_the_way_out(db):
    uri = f"sqlite:///{db}"
    with sqlite3.connect(db) as con:  # as a newer MLflow would leave it
        con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(store.StoreError) as refused:
        tracking_client.check_store(uri)
    assert "a newer MLflow wrote it): upgrade MLflow, or restore a backup" in refused.value.message
    assert store.schema_version(db) == "ffffffffffff"  # left as it was
    assert schema.head_revision() in schema.known_revisions()


def _damaged_commands(tmp: Path) -> dict[str, tuple[str, ...]]:
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp / "digit.png")
    run_dir = tmp / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": "0" * 32, "tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"})
    )
    return {
        "pipeline.stages.registry": (),
        "pipeline.stages.predict": (str(tmp / "digit.png"),),
        "pipeline.stages.ui": ("--dry-run",),
        "pipeline.stages.evaluate": (f"run_dir={run_dir}", "data.root=" + str(tmp)),
        "pipeline.stages.train": ("trainer.max_epochs=1", f"run_dir={tmp / 'new'}"),
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",
    [
        "pipeline.stages.registry",
        "pipeline.stages.predict",
        "pipeline.stages.ui",
        "pipeline.stages.evaluate",
        "pipeline.stages.train",
    ],
)
def test_every_command_stops_on_a_cut_store_with_one_message(db, module, mnist_root):
    cut_in_half(db)
    args = _damaged_commands(db.parent)[module]
    if module == "pipeline.stages.train":
        args += (f"data.root={mnist_root}",)
    out = run_module(module, *args, cwd=db.parent)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr[-2000:]
    assert str(db) in errors[0] and "truncated" in errors[0] and "python -m pipeline.stages.store restore" in errors[0]
