"""The project's Optuna (>= 4) sweeper: a study kept in SQLite survives a kill and goes on, two
workers share one study without running a trial twice, and every trial is an MLflow child run of
the study's parent run, which carries the best trial."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_module
from sqlalchemy.exc import OperationalError

optuna = pytest.importorskip("optuna", minversion="4.0")

TINY = ["data.train_subset=1000", "trainer.max_epochs=1", "tracking.log_model=false", "evaluate.batch_size=5000"]
# Beats every second; a trial silent for 6 s belongs to a dead worker.
FAST_HEARTBEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=6"]


def sweep_args(root: Path, storage: str, uri: str, mnist_root: Path, n_trials: int, sweep: str) -> list[str]:
    return [
        "+experiment=optuna_mlp",
        f"hydra.sweeper.n_trials={n_trials}",
        f"hydra.sweeper.storage={storage}",
        *FAST_HEARTBEAT,
        *TINY,
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={root}/{sweep}",
    ]


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.stages.train", *args],
        cwd=cwd,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def trials_by_state(storage: str) -> dict[str, list]:
    from hydra_plugins.pipeline_optuna_sweeper.sweeper import open_storage

    # open_storage waits out a worker that is creating the database's tables right now
    return by_state(open_storage(storage))


def trials_while_frozen(storage: str) -> dict[str, list] | None:
    """The trials by state, read while the worker is stopped (SIGSTOP); None if it stopped inside a write.

    A writer stopped mid-commit keeps SQLite's lock until it runs again, so this waits one second for
    it, not the two minutes (and five attempts) the workers wait for each other."""
    from optuna.exceptions import StorageInternalError
    from optuna.storages import RDBStorage

    try:
        return by_state(RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 1}}))
    except (OperationalError, StorageInternalError):
        return None


def by_state(storage) -> dict[str, list]:
    try:
        study = optuna.load_study(study_name="mnist-mlp", storage=storage)
    except KeyError:  # the database exists, the study row not yet: nothing has run
        return {}
    found: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        found.setdefault(t.state.name, []).append(t)
    return found


def trials_training(sweep_dir: Path) -> list[int]:
    """The trials after the first whose run.json says they are training now."""
    found = []
    for ref in sweep_dir.glob("trial-*/run.json"):
        number = int(ref.parent.name.split("-")[1])
        with contextlib.suppress(OSError, ValueError):  # written by os.replace: whole or absent
            if number > 0 and json.loads(ref.read_text()).get("state") == "training":
                found.append(number)
    return sorted(found)


def children(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, [r for r in runs if "optuna.trial" in r.data.tags]


def test_search_space_from_hydra_grammar():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from hydra_plugins.pipeline_optuna_sweeper.sweeper import search_space

    space, fixed = search_space(
        {"optim.lr": "tag(log, interval(0.0001, 0.01))", "model.hidden.0": "choice(64, 128)"},
        [
            "model.dropout=interval(0.0, 0.5)",
            "seed=range(1, 4)",
            "trainer.max_epochs=1",
            "data.batch_size=int(interval(32, 256))",
        ],
    )
    assert space["optim.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["model.hidden.0"] == CategoricalDistribution([64, 128])
    assert space["model.dropout"] == FloatDistribution(0.0, 0.5)
    assert space["seed"] == CategoricalDistribution([1, 2, 3])
    assert space["data.batch_size"] == IntDistribution(32, 256)
    assert fixed == ["trainer.max_epochs=1"]


@pytest.mark.slow
def test_killed_study_resumes_where_it_stopped(tmp_path, mnist_root):
    storage, uri = f"sqlite:///{tmp_path}/study.db", f"sqlite:///{tmp_path}/mlflow.db"
    proc = start(sweep_args(tmp_path, storage, uri, mnist_root, 3, "first"), tmp_path, tmp_path / "first.log")
    try:
        # Kill the worker (SIGKILL: no clean-up at all) while a later trial trains, after trial 0 finished.
        # Its run.json says "training" until its MLflow run is about to end (killed later, while it
        # evaluates, the run has already ended FINISHED). The worker is frozen while the study and
        # run.json are read again, so the trial cannot move on between that read and the kill.
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the first worker was never caught training a later trial"
            training = trials_training(tmp_path / "first")
            if training:
                os.killpg(proc.pid, signal.SIGSTOP)
                with_state = trials_while_frozen(storage) or {}  # None: frozen inside a write, look again
                running = [t.number for t in with_state.get("RUNNING", [])]
                if with_state.get("COMPLETE") and running == training == trials_training(tmp_path / "first"):
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = trials_by_state(storage)
    done = before["COMPLETE"]
    (killed,) = before["RUNNING"]

    resumed = run_module(
        "pipeline.stages.train", *sweep_args(tmp_path, storage, uri, mnist_root, 3, "second"), cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = trials_by_state(storage)
    complete = {t.number: t for t in after["COMPLETE"]}
    assert len(complete) == 3 and "RUNNING" not in after and "WAITING" not in after
    # The finished trials are kept as they were, not run again.
    for trial in done:
        assert complete[trial.number].value == trial.value and complete[trial.number].params == trial.params
    # The killed trial failed as stale and ran again with the same parameters.
    (failed,) = after["FAIL"]
    assert failed.number == killed.number
    retries = [t for t in complete.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params

    client, runs = children(uri)
    by_trial = {int(r.data.tags["optuna.trial"]): r for r in runs}
    assert set(by_trial) == set(complete) | {killed.number}
    assert all(by_trial[n].info.status == "FINISHED" for n in complete)
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    best = max(complete.values(), key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.metrics["best/value"] == pytest.approx(best.value)
    assert parent.info.status == "FINISHED"
    # The killed trial's MLflow run does not stay RUNNING.
    ref = json.loads((tmp_path / "first" / f"trial-{killed.number}" / "run.json").read_text())
    killed_run = client.get_run(ref["run_id"])
    assert killed_run.info.status == "KILLED" and killed_run.data.tags["sweep.retried"] == "true"
    assert killed_run.info.run_id == by_trial[killed.number].info.run_id
    # A resumed worker does not replay the first worker's seeded draws.
    assert len({tuple(sorted(t.params.items())) for t in complete.values() if t.number != retries[0].number}) == 2


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path, mnist_root):
    from pipeline.tracking.client import client
    from pipeline.tracking.runs import experiment_id

    storage, uri = f"sqlite:///{tmp_path}/study.db", f"sqlite:///{tmp_path}/mlflow.db"
    # The store exists before the workers start, as a team's store does (MLflow cannot create
    # one SQLite store from two processes at the same moment).
    experiment_id(client(uri), "mnist", uri)
    workers = [
        start(sweep_args(tmp_path, storage, uri, mnist_root, 6, f"worker{i}"), tmp_path, tmp_path / f"worker{i}.log")
        for i in (1, 2)
    ]
    try:
        for i, w in enumerate(workers, 1):
            assert w.wait(timeout=540) == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
    after = trials_by_state(storage)
    assert set(after) == {"COMPLETE"}
    numbers = sorted(t.number for t in after["COMPLETE"])
    assert numbers == list(range(len(numbers))) and len(numbers) >= 6
    # Each trial ran in exactly one worker, and both workers ran trials.
    ran = {i: {int(p.name.split("-")[1]) for p in (tmp_path / f"worker{i}").glob("trial-*")} for i in (1, 2)}
    assert not ran[1] & ran[2] and ran[1] | ran[2] == set(numbers)
    assert ran[1] and ran[2]

    client, runs = children(uri)
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == numbers  # one child run per trial
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.data.tags["optuna.study"] == "mnist-mlp"
    best = max(after["COMPLETE"], key=lambda t: t.value)
    assert parent.data.tags["best.trial"] == str(best.number)
    assert parent.data.metrics["sweep/jobs"] == len(numbers)
