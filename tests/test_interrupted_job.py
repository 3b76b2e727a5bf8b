"""Ctrl-C or SIGTERM at any boundary of a Hydra job (after training, as evaluate reopens the run,
during its predictions, its figures, the registry's champion step) ends the run KILLED, never
FINISHED without results nor RUNNING; the same command again does not train again and runs only
what is missing, in the same run, with no second model version."""

import os
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

# Runs the training command with one function replaced by one that signals the process first: the
# signal lands exactly at that boundary, as a key press or a scheduler's stop would.
_SIGNAL_AT = """
import importlib, os, runpy, signal, sys
target, signame = sys.argv[1], sys.argv[2]
module_name, _, attr = target.partition(":")
owner = importlib.import_module(module_name)
if "." in attr:  # a method: Class.method
    cls, attr = attr.split(".")
    owner = getattr(owner, cls)
original = getattr(owner, attr)
def signalled(*args, **kwargs):
    os.kill(os.getpid(), getattr(signal, signame))
    return original(*args, **kwargs)
setattr(owner, attr, signalled)
assert "torch" not in sys.modules, "the reproducible mode must import torch itself"
sys.argv = ["pipeline.stages.train", *sys.argv[3:]]
runpy.run_module("pipeline.stages.train", run_name="__main__", alter_sys=True)
"""

# (where the signal lands, which signal, the exit status the user sees)
BOUNDARIES = [
    ("pipeline.stages.evaluate:evaluate", "SIGTERM", 143),  # training done, evaluate not started
    ("pipeline.tracking.runs:Run.open", "SIGINT", 1),  # evaluate reopening the run
    ("pipeline.stages.evaluate:predict_logits", "SIGINT", 1),  # the test-set predictions
    ("pipeline.common.plots:confusion_png", "SIGTERM", 143),  # the figures
    ("pipeline.tracking.registry:after_evaluation", "SIGINT", 1),  # the champion alias
]


def _train(tmp_path, args, signal_at=None):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONUNBUFFERED": "1"}
    if signal_at is None:
        command = [sys.executable, "-m", "pipeline.stages.train", *args]
    else:
        command = [sys.executable, "-c", _SIGNAL_AT, *signal_at, *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_stop_at_any_boundary_ends_killed_and_the_same_command_runs_only_what_is_missing(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "data.train_subset=500",
        "trainer.max_epochs=1",
        "tracking.register=true",
        "tracking.system_metrics=false",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    ]
    client = MlflowClient(uri)
    for i, (where, signame, status) in enumerate(BOUNDARIES):
        out = _train(tmp_path, args, (where, signame))
        assert out.returncode == status, (where, out.stdout[-2000:], out.stderr[-3000:])
        (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
        assert run.info.status == "KILLED", (where, run.info.status)
        run_dir = tmp_path / "outputs" / "runs"
        (folder,) = run_dir.iterdir()  # the same folder each time: the command found it
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("to resume: python -m pipeline.stages.train") and last.endswith(f"run_dir={folder}")
        if i == 0:
            assert "[train] done in" in out.stdout
            assert "test/acc" not in {k.split("/", 1)[-1] for k in run.data.metrics}
        else:  # trained once, by the first command only
            assert "[train] done in" not in out.stdout, where
            assert f"already trained in {folder}" in out.stdout
            assert "running what is missing: evaluate" in out.stdout
    out = _train(tmp_path, args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[train] done in" not in out.stdout and "[evaluate] test/acc=" in out.stdout
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/acc"] > 0.2  # 500 images, 1 epoch: well above chance (0.1)
    (model,) = client.search_registered_models()
    assert [str(v.version) for v in client.search_model_versions(f"name='{model.name}'")] == ["1"]
    assert str(client.get_model_version_by_alias(model.name, "champion").version) == "1"

    # Finished: the same command now trains a new run, as a finished one is never reopened.
    out = _train(tmp_path, args)
    assert out.returncode == 0 and "[train] done in" in out.stdout
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 2


def test_a_signal_during_a_held_write_ends_as_that_signal_once_the_write_is_done():
    from pipeline.tracking.interrupts import SIGTERM_EXIT, ctrl_c_after_write, sigterm_raises

    before = signal.getsignal(signal.SIGTERM)
    reached: list[str] = []
    with pytest.raises(SystemExit) as caught, sigterm_raises():
        with ctrl_c_after_write():
            signal.raise_signal(signal.SIGTERM)
            reached.append("the write finished")
        reached.append("after the write")
    assert reached == ["the write finished"]
    assert caught.value.code == SIGTERM_EXIT
    assert signal.getsignal(signal.SIGTERM) is before
