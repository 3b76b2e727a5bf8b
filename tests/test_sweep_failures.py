"""A sweep with failed jobs reports each one (overrides, run folder), ends its parent run FAILED
with the count, never RUNNING; the same command again runs only the failed jobs, into their own
runs, and the parent ends FINISHED. A sweep stopped with Ctrl-C ends its parent KILLED."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

# The sweep with two jobs made to fail: seed=2 in its evaluation (its run exists, trained), and
# seed=3 as it creates its run (as when the tracking server does not answer), so it has no run.
_FAILING = """
import runpy, sys
import pipeline.stages.evaluate as evaluate, pipeline.tracking.runs as runs
def failing(patched, seed, message):
    def call(cfg, *args, **kwargs):
        if cfg.seed == seed:
            raise RuntimeError(message)
        return patched(cfg, *args, **kwargs)
    return call
evaluate.evaluate = failing(evaluate.evaluate, 2, "evaluation failed on purpose")
runs.start_run = failing(runs.start_run, 3, "the tracking server did not answer")
sys.argv = ["pipeline.stages.train", *sys.argv[1:]]
runpy.run_module("pipeline.stages.train", run_name="__main__", alter_sys=True)
"""


def _env():
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONUNBUFFERED": "1"}


def _args(tmp_path, mnist_root):
    return [
        "-m",
        "seed=1,2,3",
        "data.train_subset=300",
        "trainer.max_epochs=1",
        "tracking.log_model=false",
        "tracking.system_metrics=false",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"data.root={mnist_root}",
    ]


def _runs(client):
    experiment = client.get_experiment_by_name("mnist").experiment_id
    runs = client.search_runs([experiment])
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = sorted((r for r in runs if r not in parents), key=lambda r: int(r.data.params["seed"]))
    return parents, children


@pytest.mark.slow
def test_failed_jobs_are_reported_and_the_same_command_reruns_only_them(tmp_path, mnist_root):
    args = _args(tmp_path, mnist_root)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    first = subprocess.run(
        [sys.executable, "-c", _FAILING, *args], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 1, first.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    assert "[sweep] job 1 failed: RuntimeError: evaluation failed on purpose" in first.stderr
    assert "[sweep] job 2 failed: RuntimeError: the tracking server did not answer" in first.stderr
    assert "[sweep]   overrides: seed=2" in first.stderr and "[sweep]   overrides: seed=3" in first.stderr
    assert f"[sweep]   run folder: {sweep_dir / '1'}" in first.stderr
    assert "2 of 3 jobs did not finish" in first.stderr
    (parent,), children = _runs(client)
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/jobs"] == 3 and parent.data.metrics["sweep/failed"] == 2
    assert [(c.data.params["seed"], c.info.status) for c in children] == [("1", "FINISHED"), ("2", "FAILED")]
    trained = json.loads((sweep_dir / "1" / "run.json").read_text())
    assert trained["state"] == "completed" and trained["stages_done"] == []

    again = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"[sweep] resuming sweep parent run {parent.info.run_id}" in again.stdout
    assert f"this job finished in {sweep_dir / '0'}" in again.stdout  # seed=1: kept
    assert f"already trained in {sweep_dir / '1'}" in again.stdout  # seed=2: evaluate only
    assert again.stdout.count("[train] done in") == 1  # seed=3: trained, once
    (parent,), children = _runs(client)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep/jobs"] == 3 and parent.data.metrics["sweep/failed"] == 0
    assert [(c.data.params["seed"], c.info.status) for c in children] == [(s, "FINISHED") for s in "123"]
    assert all("test/acc" in c.data.metrics for c in children)


@pytest.mark.slow
def test_a_sweep_stopped_with_ctrl_c_ends_its_parent_killed(tmp_path, mnist_root):
    args = _args(tmp_path, mnist_root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(tmp_path.glob("multirun/*/0/run.json")):
        time.sleep(0.05)  # Ctrl-C once the first job has its run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (parent,), children = _runs(client)
    assert parent.info.status == "KILLED", err[-3000:]
    assert [c.info.status for c in children] == ["KILLED"]
    assert f"[sweep] stopped: 1 of 1 jobs did not finish; parent run {parent.info.run_id} ends KILLED" in err


def test_the_same_sweep_again_resumes_an_unfinished_parent_only(tmp_path):
    from omegaconf import OmegaConf

    from pipeline.tracking import sweeps
    from pipeline.tracking.runs import create_run

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = OmegaConf.create({"tracking": {"uri": uri, "experiment": "mnist"}})
    cases = [  # (the parent's status, its sweep process, whether the same sweep again resumes it)
        ("FAILED", "alive", True),
        ("KILLED", "alive", True),
        ("FINISHED", "gone", False),
        ("RUNNING", "gone", True),  # its process died (SIGKILL, or the store was down at its end)
        ("RUNNING", "alive", False),  # a sweep still running: never taken over
        ("RUNNING", "elsewhere", False),  # another machine's: its process cannot be checked from here
    ]
    for i, (status, owner, resumed) in enumerate(cases):
        tags = sweeps.owner_tags() | {"sweep": "parent", "hydra.overrides": f"seed=1,2 case={i}"}
        if owner == "gone":
            tags[sweeps.SWEEP_PID_TAG] = gone.stdout.strip()
        elif owner == "elsewhere":
            tags[sweeps.SWEEP_HOST_TAG] = "another-host"
        parent = create_run(uri, "mnist", "sweep", tags)
        if status != "RUNNING":
            parent.end(status)
        assert (sweeps.unfinished_sweep(config, f"seed=1,2 case={i}") == parent) is resumed, (status, owner)
    assert sweeps.unfinished_sweep(config, "seed=1,3") is None  # other overrides: another sweep


def test_a_sweep_whose_store_is_down_at_its_end_says_what_stays_running_and_what_to_type(tmp_path, capsys, monkeypatch):
    from pipeline.stages.sweep import SweepTracking
    from pipeline.tracking.runs import Run

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    (tmp_path / "job-failed-1.json").write_text(json.dumps({"run_dir": str(tmp_path / "1")}))
    (tmp_path / "job-failed-2.json").write_text(json.dumps({"run_dir": str(tmp_path / "2")}))
    callback = SweepTracking()
    callback.sweep_dir, callback.reruns = tmp_path, True
    callback.run = Run("http://127.0.0.1:9", "0" * 32)  # nothing listens there: the store does not answer
    callback._end_if_running()
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"[sweep] 2 job(s) failed (named above; {tmp_path}/job-failed-*.json); the tracking store")
    assert f"parent run {'0' * 32} stays RUNNING. Once it answers, run the same command again" in line
