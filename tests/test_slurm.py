"""Sweeps and distributed training on a real (throwaway, one-host) SLURM cluster: a sweep through
Hydra's submitit launcher, a DDP training with 2 SLURM tasks, and a cancelled job that resumes.

The cluster (tests/slurm_cluster.py) needs Debian's slurm-wlm and munge
(scripts/install-test-services.sh) and root; without them the tests skip, except under CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
from conftest import need, run_module
from mlflow.tracking import MlflowClient

from pipeline.common.metric_names import mlflow_name

pytestmark = pytest.mark.slow
TINY = ["data.train_subset=1000", "trainer.max_epochs=1", "tracking.log_model=false", "evaluate.batch_size=5000"]
SMALL_JOBS = ["hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=15"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = slurm_cluster.available()
    need(why is None, f"no SLURM test cluster: {why}")
    with slurm_cluster.cluster(tmp_path_factory.mktemp("slurm")) as c:
        yield c


def wait_finished(cluster, job_id: str, timeout: float = 540) -> dict:
    """The job's completion record, once its processes are gone too (a cancelled job is
    recorded at once, while its processes still have KillWait seconds to stop)."""
    deadline = time.monotonic() + timeout
    while (
        job_id not in cluster.completed()
        or cluster.run("squeue", "-h", "-j", job_id, "-o", "%T", check=False).stdout.strip()
    ):
        assert time.monotonic() < deadline, f"job {job_id} did not finish:\n{cluster.logs()}"
        time.sleep(1)
    return cluster.completed()[job_id]


def runs(uri: str):
    client = MlflowClient(uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return (
        client,
        [r for r in found if r.data.tags.get("sweep") != "parent"],
        [r for r in found if r.data.tags.get("sweep") == "parent"],
    )


def test_sweep_runs_as_slurm_jobs_under_one_parent_run(cluster, tmp_path, mnist_root):
    uri, sweep = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "multirun"
    result = run_module(
        "pipeline.stages.train",
        "-m",
        "hydra/launcher=slurm",
        "seed=1,2,3",
        *TINY,
        *SMALL_JOBS,
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env=cluster.env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + cluster.logs()

    _client, children, parents = runs(uri)
    (parent,) = parents
    assert len(children) == 3 and parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(r.data.tags["seed"] for r in children) == ["1", "2", "3"]
    # Three SLURM jobs (one job array), each finished as COMPLETED in SLURM's job completion log.
    job_ids = {r.data.tags["slurm.job_id"] for r in children}
    assert len(job_ids) == 3
    for job_id in job_ids:
        assert wait_finished(cluster, job_id)["JobState"] == "COMPLETED"
    assert len(list((sweep / ".submitit").rglob("*_result.pkl"))) == 3  # submitit's job files
    for num in range(3):  # each job's outputs in the sweep folder, tied to its MLflow run
        ref = json.loads((sweep / str(num) / "run.json").read_text())
        assert ref["state"] == "completed" and ref["run_id"] in {r.info.run_id for r in children}
        assert (sweep / str(num) / "metrics.json").is_file()


def test_ddp_training_with_two_slurm_tasks(cluster, tmp_path, mnist_root):
    uri, sweep = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "multirun"
    result = run_module(
        "pipeline.stages.train",
        "-m",
        "hydra/launcher=slurm_ddp",
        "trainer=ddp_cpu",
        "seed=7",
        *TINY,
        *SMALL_JOBS,
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.setup=[]",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env=cluster.env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + cluster.logs()

    # One MLflow run, written by rank 0 only.
    _client, children, _parents = runs(uri)
    (run,) = children
    assert run.info.status == "FINISHED" and run.data.params["trainer.strategy"] == "ddp"
    assert "test/acc" in run.data.metrics
    job_id = run.data.tags["slurm.job_id"]
    job = wait_finished(cluster, job_id)
    assert job["JobState"] == "COMPLETED" and job["ProcCnt"] == "2"
    # Lightning took its ranks from SLURM: task i is global rank i of 2 (one log per task).
    logs = sorted((sweep / ".submitit").rglob("*_log.err"))
    assert len(logs) == 2
    for rank, path in enumerate(logs):
        log = path.read_text()
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in log, log[-2000:]
    assert json.loads((sweep / "0" / "run.json").read_text())["run_id"] == run.info.run_id


def test_ddp_training_across_two_nodes(cluster, tmp_path, mnist_root):
    """num_nodes=2: one task on each of the cluster's two slurmd nodes (both on this host)."""
    uri, sweep = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "multirun"
    result = run_module(
        "pipeline.stages.train",
        "-m",
        "hydra/launcher=slurm_ddp",
        "trainer=ddp_cpu",
        "trainer.num_nodes=2",
        "trainer.devices=1",
        "seed=7",
        *TINY,
        *SMALL_JOBS,
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.setup=[]",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env=cluster.env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + cluster.logs()

    _client, children, _parents = runs(uri)
    (run,) = children
    assert run.info.status == "FINISHED" and run.data.params["trainer.num_nodes"] == "2"
    job = wait_finished(cluster, run.data.tags["slurm.job_id"])
    assert job["JobState"] == "COMPLETED" and job["NodeCnt"] == "2" and job["ProcCnt"] == "2"
    logs = sorted((sweep / ".submitit").rglob("*_log.err"))
    assert len(logs) == 2
    for rank, path in enumerate(logs):
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in path.read_text()


def sbatch(cluster, tmp_path: Path, args: list[str], log: str) -> str:
    # exec: the training is the batch script's own process, as docs/scale-out.md advises, so
    # scancel's SIGTERM finds it and no shell in between ends the job step before it stops.
    cmd = " ".join(["exec", sys.executable, "-m", "pipeline.stages.train", *args])
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--ntasks=1",
            "--mem=1G",
            f"--chdir={tmp_path}",
            f"--output={tmp_path / log}",
            "--wrap",
            cmd,
        ],
        env={**env, **cluster.env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().split(";")[0]


def test_cancelled_job_ends_killed_and_resumes_into_the_same_run(cluster, tmp_path, mnist_root):
    uri, run_dir = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "run"
    args = [
        "data.train_subset=5000",
        "trainer.max_epochs=6",
        "tracking.log_model=false",
        "evaluate.batch_size=5000",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"run_dir={run_dir}",
    ]
    first = sbatch(cluster, tmp_path, args, "first.log")
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists():  # cancel once the first epoch is checkpointed
        assert first not in cluster.completed(), (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.2)
    cluster.run("scancel", first)
    assert wait_finished(cluster, first)["JobState"] == "CANCELLED"
    ref = json.loads((run_dir / "run.json").read_text())
    client = MlflowClient(uri)
    assert ref["state"] == "training"
    assert client.get_run(ref["run_id"]).info.status == "KILLED", (tmp_path / "first.log").read_text()[-3000:]
    done_epochs = len(client.get_metric_history(ref["run_id"], mlflow_name("val/acc")))
    assert 1 <= done_epochs < 6

    second = sbatch(cluster, tmp_path, args, "second.log")
    assert wait_finished(cluster, second)["JobState"] == "COMPLETED", (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    assert f"resuming MLflow run {ref['run_id']}" in log
    assert "[train] epoch 1/6" not in log  # the finished epochs were not trained again
    after = json.loads((run_dir / "run.json").read_text())
    assert after["run_id"] == ref["run_id"] and after["state"] == "completed"
    run = client.get_run(ref["run_id"])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(ref["run_id"], mlflow_name("val/acc"))] == [1, 2, 3, 4, 5, 6]
    assert len(client.search_runs([run.info.experiment_id])) == 1
