"""Team setup, for real: a throwaway PostgreSQL cluster and `mlflow server` on loopback; a tiny
training logs to the server through one URI, and everything is read back (and found in PostgreSQL).

Needs PostgreSQL's server binaries (initdb, pg_ctl; scripts/install-test-services.sh) and the
psycopg driver (psycopg[binary]). Without them the test is skipped, except under CI (the CI variable
set), where it fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import free_port, need, run_module, serving

from pipeline.common.metric_names import mlflow_name
from pipeline.stages.ui import server_env

PASSWORD = "mlflow-test-only"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:<free port> only."""
    bindir = _pg_bin()
    need(bindir is not None, "PostgreSQL server binaries (initdb, pg_ctl) not found")
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's default driver for postgresql:// URIs)
    except ImportError:
        need(False, "the psycopg package is not installed (pip install 'psycopg[binary]')")
    # PostgreSQL refuses to run as root: then the cluster belongs to the `postgres` system user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            need(False, "running as root and there is no `postgres` user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="mnist-pg-"))  # not under pytest's 0700 root-only tmp
    data, pwfile = base / "data", base / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        for path in (base, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    log = base / "postgres.log"

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120, check=check)

    try:
        pg(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "mlflow",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        )
        pg(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base}",
        )
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        yield f"postgresql://mlflow:{PASSWORD}@127.0.0.1:{port}/mlflow"
    except subprocess.CalledProcessError as err:
        pytest.fail(f"PostgreSQL did not start: {err.cmd}: {err.stderr}\n{log.read_text() if log.exists() else ''}")
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` on 127.0.0.1:<free port>: PostgreSQL backend store, a local artifact root."""
    tmp = tmp_path_factory.mktemp("server")
    artifacts = tmp / "artifacts"
    port = free_port()
    env = server_env({k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        postgres,
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with serving(cmd, f"{url}/health", cwd=tmp, env=env, log=tmp / "server.log"):
        yield url, artifacts, tmp / "server.log"


@pytest.mark.slow
def test_training_logs_to_a_postgresql_backed_server_by_one_uri(mlflow_server, postgres, tmp_path, mnist_root):
    url, artifacts, server_log = mlflow_server
    run_dir = tmp_path / "run"
    # One setting: MLFLOW_TRACKING_URI. Nothing else in the command knows about the server.
    out = run_module(
        "pipeline.stages.train",
        "data.train_subset=2000",
        "trainer.max_epochs=1",
        f"run_dir={run_dir}",
        f"data.root={mnist_root}",
        "tracking.register=true",
        cwd=tmp_path,
        env={"MLFLOW_TRACKING_URI": url},
    )
    assert out.returncode == 0, out.stderr[-3000:] + server_log.read_text()[-3000:]
    assert f"in {url}" in out.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.get_experiment_by_name("mnist")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("mlp-128x64-relu-adam0.001-s42-")
    assert run.data.params["data.train_subset"] == "2000" and run.data.params["tracking.uri"] == "None"
    assert 0.7 < run.data.metrics["test/acc"] <= 1.0
    assert [m.step for m in client.get_metric_history(run.info.run_id, mlflow_name("val/acc"))] == [1]
    assert "python -m pipeline.stages.train" in run.data.tags["mlflow.note.content"]
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion.png" in listed
    # The artifact bytes went through the server into its artifact root.
    stored = list(artifacts.rglob("confusion.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == (run_dir / "figures/evaluation/confusion.png").read_bytes()
    # The registry lives on the server too: version 1, with its signature, is the champion.
    version = client.get_model_version_by_alias("mnist-mlp", "champion")
    assert str(version.version) == "1" and version.run_id == run.info.run_id

    # And the records really are in PostgreSQL, not in some local file.
    import psycopg

    with psycopg.connect(postgres) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
        assert cur.fetchone() == ("FINISHED",)
        cur.execute("SELECT value FROM latest_metrics WHERE run_uuid = %s AND key = 'test/acc'", (run.info.run_id,))
        assert cur.fetchone()[0] == pytest.approx(run.data.metrics["test/acc"])
        cur.execute("SELECT count(*) FROM model_versions WHERE name = 'mnist-mlp'")
        assert cur.fetchone() == (1,)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()


def test_server_tracking_config_names_a_server(tmp_path):
    out = run_module("pipeline.stages.config", "tracking=server", cwd=tmp_path)
    assert out.returncode == 0 and "uri: http://127.0.0.1:5000" in out.stdout


@pytest.mark.slow
def test_multinode_trainer_and_slurm_launcher_compose():
    """Configured, not run: there is no SLURM cluster here. The pieces must at least fit together."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pipeline.config.settings import CONF_DIR, validate

    ddp = OmegaConf.load(CONF_DIR / "trainer" / "ddp.yaml")
    multinode = OmegaConf.load(CONF_DIR / "trainer" / "ddp_multinode.yaml")
    assert list(multinode) == list(ddp) and multinode.strategy == "ddp" and multinode.num_nodes > 1
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher not installed")
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm_ddp", "trainer=ddp_multinode", "trainer.num_nodes=3", "trainer.devices=2"],
            return_hydra_config=True,
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    # one task per GPU on every node: what Lightning's SLURM environment expects
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (3, 2, 2)
    del cfg.hydra
    validate(cfg)
