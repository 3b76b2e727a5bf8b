"""Pruning in the project's Optuna sweeper (hydra.sweeper.pruner): each job reports `val/acc` per epoch
to its trial through the study's storage, a weak trial stops early, ends PRUNED in the study and
FINISHED with the tag optuna.pruned in MLflow, unevaluated; two workers share a pruning study, and
a killed trial is still run again.

The search space is one learning rate that learns (3e-3) and one that cannot (1e-6, at chance
after an epoch): a trial with the weak rate, judged against a finished trial with the strong one,
is pruned whatever the machine; trials with the strong rate train alike and are never pruned.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from conftest import run_module
from test_optuna_study import FAST_HEARTBEAT, children, start, trials_by_state, trials_while_frozen

optuna = pytest.importorskip("optuna", minversion="4.0")

GOOD, WEAK = 0.003, 0.000001
EPOCHS = 3
TINY = [
    "data.train_subset=1000",
    f"trainer.max_epochs={EPOCHS}",
    "tracking.log_model=false",
    "evaluate.batch_size=5000",
]
# Median pruning from the first epoch on, once one trial finished.
MEDIAN = [
    "hydra.sweeper.pruner.name=median",
    "hydra.sweeper.pruner.n_startup_trials=1",
    "hydra.sweeper.pruner.n_warmup_steps=1",
]


def sweep_args(root: Path, uri: str, mnist_root: Path, n_trials: int, sweep: str, storage: str | None = None):
    return [
        "-m",
        "hydra/sweeper=optuna_study",
        "hydra.sweeper.study_name=mnist-mlp",
        f"optim.lr=choice({GOOD},{WEAK})",
        f"hydra.sweeper.n_trials={n_trials}",
        "hydra.sweeper.sampler.seed=6",  # draws the strong rate first: pruning happens from the 3rd trial
        *([f"hydra.sweeper.storage={storage}"] if storage else []),
        *MEDIAN,
        *FAST_HEARTBEAT,
        *TINY,
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={root}/{sweep}",
    ]


def check_pruned_runs(uri: str, study_trials: dict[str, list]) -> None:
    """Pruned trials' MLflow runs end FINISHED, tagged with the epoch, unevaluated; the parent counts them."""
    client, runs = children(uri)
    by_trial = {int(r.data.tags["optuna.trial"]): r for r in runs}
    for trial in study_trials.get("PRUNED", []):
        run = by_trial[trial.number]
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.pruned"] == "true"
        assert run.data.tags["optuna.pruned_epoch"] == str(trial.last_step)
        assert "test/acc" not in run.data.metrics  # evaluation skipped
        assert run.data.metrics["val/best_acc"] == pytest.approx(trial.value)
    for trial in study_trials["COMPLETE"]:
        run = by_trial[trial.number]
        assert run.info.status == "FINISHED" and "optuna.pruned" not in run.data.tags
        assert "test/acc" in run.data.metrics
    (parent_id,) = {r.data.tags["mlflow.parentRunId"] for r in runs}
    parent = client.get_run(parent_id)
    assert parent.data.metrics["optuna/pruned"] == len(study_trials.get("PRUNED", []))
    assert parent.data.metrics["sweep/failed"] == 0


def test_pruner_settings():
    from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner

    from pipeline.training.optuna_trial import make_pruner, pruner_problem

    defaults = {
        "name": "none",
        "n_startup_trials": 2,
        "n_warmup_steps": 2,
        "min_resource": 2,
        "max_resource": None,
        "reduction_factor": 3,
    }
    assert isinstance(make_pruner(defaults), NopPruner)
    assert isinstance(make_pruner({**defaults, "name": "median"}), MedianPruner)
    assert isinstance(make_pruner({**defaults, "name": "hyperband", "max_resource": 8}), HyperbandPruner)
    assert pruner_problem(defaults) is None
    assert pruner_problem({**defaults, "name": "sometimes"}) == (
        "hydra.sweeper.pruner.name=sometimes: choose one of none, median, hyperband"
    )
    too_small = "hydra.sweeper.pruner.reduction_factor=1: use 2 or more"
    assert pruner_problem({**defaults, "reduction_factor": 1}) == too_small
    assert "below min_resource=2" in str(pruner_problem({**defaults, "max_resource": 1}))


def test_reporter_reaches_the_trial_through_the_storage(tmp_path):
    """What a job does each epoch, through nothing but the storage URL, study name and trial number."""
    from optuna.trial import TrialState

    from pipeline.training.optuna_trial import PRUNED_ATTR, PRUNER_ATTR, TrialRef, TrialReporter, job_env

    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    done = study.ask()
    done.report(0.9, 1)
    study.tell(done, 0.9)
    settings = {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 1}
    strong, weak = study.ask(), study.ask()
    for trial in (strong, weak):
        trial.set_user_attr(PRUNER_ATTR, settings)

    ref = TrialRef.from_env(job_env(url, "s", weak.number))
    assert ref == TrialRef(url, "s", weak.number)
    assert TrialRef.from_env({}) is None
    assert TrialReporter(TrialRef(url, "s", strong.number)).report(1, 0.95) is False
    assert TrialReporter(ref).report(1, 0.1) is True

    trials = {t.number: t for t in study.get_trials()}
    assert trials[strong.number].intermediate_values == {1: 0.95}
    assert trials[weak.number].intermediate_values == {1: 0.1}
    assert trials[weak.number].user_attrs[PRUNED_ATTR] == 1 and PRUNED_ATTR not in trials[strong.number].user_attrs
    # The job only reports; the sweeper tells the state.
    assert trials[weak.number].state == TrialState.RUNNING


def test_hyperband_prunes_through_the_storage(tmp_path):
    """Twelve trials of 3 epochs as jobs report them: hyperband stops the weak ones at its first rung."""
    from optuna.trial import TrialState

    from pipeline.training.optuna_trial import PRUNER_ATTR, TrialRef, TrialReporter

    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="hb", storage=url, direction="maximize")
    settings = {"name": "hyperband", "min_resource": 1, "max_resource": 3, "reduction_factor": 3}
    pruned_at = {}
    for i in range(12):
        trial = study.ask()
        trial.set_user_attr(PRUNER_ATTR, settings)
        reporter = TrialReporter(TrialRef(url, "hb", trial.number))
        level = 0.5 + 0.04 * (i % 5)  # five levels, weakest first, over and over
        epoch = next((e for e in (1, 2, 3) if reporter.report(e, level + 0.01 * e)), None)
        if epoch is None:
            study.tell(trial, level + 0.03)
        else:
            study.tell(trial, state=TrialState.PRUNED)
            pruned_at[trial.number] = epoch
    # The first round has nothing to compare with; later, the two weakest levels stop after epoch 1.
    assert pruned_at == {5: 1, 6: 1, 10: 1, 11: 1}
    assert all(t.value == t.intermediate_values[1] for t in study.get_trials() if t.state == TrialState.PRUNED)


def test_a_bad_pruner_is_refused_before_anything_is_written(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = sweep_args(tmp_path, uri, mnist_root, 2, "sweep")
    done = run_module("pipeline.stages.train", *args, "hydra.sweeper.pruner.name=sometimes", cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "error: hydra.sweeper.pruner.name=sometimes: choose one of none, median, hyperband" in done.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_weak_trials_are_pruned(tmp_path, mnist_root):
    """Without a storage the study lives in the sweep folder, which every job can reach."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = run_module("pipeline.stages.train", *sweep_args(tmp_path, uri, mnist_root, 4, "sweep"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    storage = f"sqlite:///{tmp_path}/sweep/optuna.db"
    after = trials_by_state(storage)
    assert set(after) == {"COMPLETE", "PRUNED"}
    trials = sorted(after["COMPLETE"] + after["PRUNED"], key=lambda t: t.number)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    first_strong = min(t.number for t in trials if t.params["optim.lr"] == GOOD)
    for t in trials:
        if t.params["optim.lr"] == WEAK and t.number > first_strong:
            # Judged after its first epoch against the strong trials, and stopped there.
            assert t.state.name == "PRUNED" and t.intermediate_values.keys() == {1}
            assert t.value == t.intermediate_values[1] < 0.2
            history = (tmp_path / "sweep" / f"trial-{t.number}" / "plots" / "history.csv").read_text()
            assert len(history.splitlines()) == 2  # the header and epoch 1: training stopped
        elif t.params["optim.lr"] == GOOD:
            assert t.state.name == "COMPLETE" and t.intermediate_values.keys() == set(range(1, EPOCHS + 1))
            assert t.value == pytest.approx(max(t.intermediate_values.values()))
    assert after["PRUNED"]
    check_pruned_runs(uri, after)
    ref = json.loads((tmp_path / "sweep" / f"trial-{after['PRUNED'][0].number}" / "run.json").read_text())
    assert ref["pruned_epoch"] == 1
    assert "[optuna] trial" in done.stdout and "pruned after epoch 1" in done.stdout


@pytest.mark.slow
def test_two_workers_share_a_pruning_study(tmp_path, mnist_root):
    storage, uri = f"sqlite:///{tmp_path}/study.db", f"sqlite:///{tmp_path}/mlflow.db"
    # A first worker finishes a trial with the strong rate; weak and strong trials are then queued
    # (Optuna's enqueue_trial), so which trials are pruned does not depend on which worker ran them.
    first = run_module(
        "pipeline.stages.train", *sweep_args(tmp_path, uri, mnist_root, 1, "first", storage), cwd=tmp_path
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    study = optuna.load_study(study_name="mnist-mlp", storage=storage)
    for lr in (WEAK, GOOD, WEAK, GOOD):
        study.enqueue_trial({"optim.lr": lr})
    workers = [
        start(sweep_args(tmp_path, uri, mnist_root, 5, f"worker{i}", storage), tmp_path, tmp_path / f"worker{i}.log")
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
    assert set(after) == {"COMPLETE", "PRUNED"}
    assert sorted(t.number for t in after["PRUNED"]) == [1, 3]
    assert sorted(t.number for t in after["COMPLETE"]) == [0, 2, 4]
    assert all(t.intermediate_values.keys() == {1} for t in after["PRUNED"])
    # Each queued trial ran in exactly one worker, and both workers ran trials.
    ran = {i: {int(p.name.split("-")[1]) for p in (tmp_path / f"worker{i}").glob("trial-*")} for i in (1, 2)}
    assert not ran[1] & ran[2] and ran[1] | ran[2] == {1, 2, 3, 4}
    assert ran[1] and ran[2]
    check_pruned_runs(uri, after)


@pytest.mark.slow
def test_a_killed_trial_of_a_pruning_study_runs_again(tmp_path, mnist_root):
    storage, uri = f"sqlite:///{tmp_path}/study.db", f"sqlite:///{tmp_path}/mlflow.db"
    args = sweep_args(tmp_path, uri, mnist_root, 2, "first", storage)
    proc = start(args, tmp_path, tmp_path / "first.log")
    ref = tmp_path / "first" / "trial-0" / "run.json"
    try:
        # SIGKILL (no clean-up) while trial 0 trains: frozen while run.json and the study are read,
        # so the trial cannot finish between that read and the kill.
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker was never caught training trial 0"
            if ref.is_file() and json.loads(ref.read_text()).get("state") == "training":
                os.killpg(proc.pid, signal.SIGSTOP)
                # None: frozen inside a write, let it finish and look again
                running = [t.number for t in (trials_while_frozen(storage) or {}).get("RUNNING", [])]
                if running == [0] and json.loads(ref.read_text()).get("state") == "training":
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (killed,) = trials_by_state(storage)["RUNNING"]

    args = sweep_args(tmp_path, uri, mnist_root, 2, "second", storage)
    resumed = run_module("pipeline.stages.train", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = trials_by_state(storage)
    assert set(after) <= {"FAIL", "COMPLETE", "PRUNED"}
    (failed,) = after["FAIL"]
    assert failed.number == killed.number == 0
    finished = after["COMPLETE"] + after.get("PRUNED", [])
    assert len(finished) == 2
    (retry,) = [t for t in finished if t.system_attrs.get("failed_trial") == 0]
    # The same parameters under a new number, which the retried job reported to, every epoch.
    assert retry.params == killed.params and retry.state.name == "COMPLETE"
    assert retry.intermediate_values.keys() == set(range(1, EPOCHS + 1))
    client, _ = children(uri)
    killed_run = client.get_run(json.loads(ref.read_text())["run_id"])
    assert killed_run.info.status == "KILLED" and killed_run.data.tags["sweep.retried"] == "true"


@pytest.mark.slow
def test_pruning_benchmark_in_its_quick_mode(mnist_root, monkeypatch):
    """benchmarks/pruning.py runs both searches and reports their wall times and best accuracies."""
    from test_benchmarks import check_rows

    monkeypatch.setenv("BENCH_DATA_ROOT", str(mnist_root))
    from benchmarks import pruning

    wall, best = check_rows(pruning.run(quick=True, repeats=1), "pruning")
    assert wall["unit"] == "s" and best["unit"] == "acc"
    assert all(0.5 < acc <= 1 for acc in (best["ours"], best["baseline"]))  # both searches learnt
    (pruned,) = wall["checks"]["pruned"]
    assert 0 <= pruned <= 3  # never the first trial, which nothing can be compared with
