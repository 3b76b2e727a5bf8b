"""System metrics on the runs: CPU %, memory (and GPU where NVML is present) sampled by MLflow's
monitor into every training and evaluation run, on a real SQLite store, with real training on real
MNIST; off with `tracking.system_metrics=false`; the monitor stopped however the block ends."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import psutil
import pytest
from conftest import run_module

TINY = ["data.train_subset=2000", "trainer.max_epochs=3", "data.batch_size=100", "tracking.log_model=false"]
CPU = "system/cpu_utilization_percentage"
MEMORY = "system/system_memory_usage_megabytes"


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor" and t.is_alive()]


def _history(uri: str, run_id: str, key: str):
    from mlflow import MlflowClient

    return sorted(MlflowClient(uri).get_metric_history(run_id, key), key=lambda m: m.step)


def _wait_for_samples(run, n: int, limit_s: float = 60) -> None:
    """Until the run holds n CPU samples: a monitor on a busy machine (the other test worker training)
    writes fewer than one per interval, so a fixed sleep would test the machine's load, not the monitor."""
    deadline = time.monotonic() + limit_s
    while len(_history(run.uri, run.run_id, CPU)) < n and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def run(tmp_path):
    from pipeline.tracking.runs import create_run

    made = create_run(f"sqlite:///{tmp_path}/mlflow.db", "mnist", "monitored", {})
    made.open()
    return made


@pytest.mark.parametrize("raised", [None, KeyboardInterrupt, SystemExit, RuntimeError])
def test_the_monitor_samples_and_stops_however_the_block_ends(run, raised):
    from pipeline.tracking.system_metrics import system_metrics

    settings = {"system_metrics": True, "system_metrics_interval": 0.2}
    with pytest.raises(raised) if raised else contextlib.nullcontext(), system_metrics(run, settings):
        assert len(_monitor_threads()) == 1
        _wait_for_samples(run, 3)
        if raised:
            raise raised()
    assert _monitor_threads() == []  # stopped and joined: no thread left sampling
    cpu = _history(run.uri, run.run_id, CPU)
    assert len(cpu) >= 3
    assert [m.step for m in cpu] == list(range(len(cpu)))
    assert all(0.0 <= m.value <= 100.0 for m in cpu)
    memory = [m.value for m in _history(run.uri, run.run_id, MEMORY)]
    total_mb = psutil.virtual_memory().total / 2**20
    assert memory and all(0 < v < total_mb for v in memory)


def test_a_second_stage_continues_the_steps_of_the_first(run):
    """Evaluation (and a resumed training) samples into the run training opened: its steps follow on."""
    from pipeline.tracking.system_metrics import system_metrics

    settings = {"system_metrics": True, "system_metrics_interval": 0.2}
    for block in (1, 2):
        with system_metrics(run, settings):
            _wait_for_samples(run, 3 * block)
    steps = [m.step for m in _history(run.uri, run.run_id, CPU)]
    assert len(steps) >= 6 and steps == list(range(len(steps)))  # no step written twice


@pytest.mark.parametrize("tracking", [{"system_metrics": False, "system_metrics_interval": 0.2}, None])
def test_off_or_not_rank_zero_starts_no_monitor(run, tracking):
    from pipeline.tracking.system_metrics import system_metrics

    # tracking None stands for a DDP rank other than 0, which holds no run
    with system_metrics(run if tracking else None, tracking or {"system_metrics": True}):
        assert _monitor_threads() == []
        time.sleep(0.5)
    assert _history(run.uri, run.run_id, CPU) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tracking.system_metrics=sometimes", "tracking.system_metrics must be true or false, got 'sometimes'"),
        ("tracking.system_metrics_interval=0", "tracking.system_metrics_interval must be a positive number"),
    ],
)
def test_a_bad_system_metrics_setting_exits_2_and_leaves_no_run_folder(override, message, tmp_path):
    out = run_module("pipeline.stages.train", override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def _train(tmp_path, mnist_root, *extra: str):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_dir = tmp_path / "run"
    out = run_module(
        "pipeline.stages.train",
        *TINY,
        *extra,
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return uri, run_dir, json.loads((run_dir / "run.json").read_text())["run_id"], out


@pytest.mark.slow
def test_training_and_evaluation_record_system_metrics(tmp_path, mnist_root):
    # A short interval: how many samples a tiny training gets depends on its length, not on the code.
    uri, run_dir, run_id, out = _train(tmp_path, mnist_root, "tracking.system_metrics_interval=0.1")
    assert "monitoring system metrics" not in out.stderr  # MLflow's start/stop notices stay quiet
    from mlflow import MlflowClient

    recorded = MlflowClient(uri).get_run(run_id)
    assert recorded.info.status == "FINISHED"
    assert {CPU, MEMORY, "system/system_memory_usage_percentage"} <= set(recorded.data.metrics)
    cpu = _history(uri, run_id, CPU)
    assert len(cpu) >= 3 and [m.step for m in cpu] == list(range(len(cpu)))
    assert max(m.value for m in cpu) > 0  # it trained: the CPU was busy
    # Evaluation run on its own: its samples follow training's in the same run, none written twice.
    again = run_module(
        "pipeline.stages.evaluate",
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "tracking.system_metrics_interval=0.2",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    after = _history(uri, run_id, CPU)
    assert len(after) > len(cpu) and [m.step for m in after] == list(range(len(after)))
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_system_metrics_off_with_one_setting(tmp_path, mnist_root):
    uri, _, run_id, _ = _train(tmp_path, mnist_root, "tracking.system_metrics=false")
    from mlflow import MlflowClient

    metrics = MlflowClient(uri).get_run(run_id).data.metrics
    assert "test/acc" in metrics and not [k for k in metrics if k.startswith("system/")]


@pytest.mark.slow
def test_the_benchmark_row_times_the_command_with_and_without(mnist_root, monkeypatch):
    """benchmarks/system_metrics.py in its quick mode: one row, on against off, and every "on" run
    recorded samples (the row's check; the benchmark raises otherwise). No timing is asserted."""
    from test_benchmarks import check_rows

    from benchmarks import system_metrics as bench

    monkeypatch.setenv("BENCH_DATA_ROOT", str(mnist_root))
    whole, monitor = check_rows(bench.run(quick=True, repeats=1), "system_metrics")
    assert whole["target"] == "ratio <= 1.05" and "on (every 0.1 s) vs off" in whole["case"]
    assert len(whole["checks"]["samples_on"]) == len(whole["checks"]["samples_off"]) == 1
    assert whole["checks"]["system_samples_on"][0] >= 1
    assert monitor["unit"] == "ms" and monitor["baseline"] is None and "CPU time per sample" in monitor["case"]


def test_a_sweeps_results_file_leaves_the_system_metrics_in_mlflow(tmp_path):
    """reports/results/*.json is reviewed in git: a machine's last CPU sample must not change it."""
    from pipeline.claims import results
    from pipeline.config.settings import compose
    from pipeline.tracking.runs import start_run
    from pipeline.tracking.sweeps import start_sweep

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose([f"tracking.uri={uri}"])
    parent = start_sweep(cfg, "claim_mlp", tags={"preset": "claim_mlp"})
    job = start_run(cfg, "job0", parent_run_id=parent.run_id)
    job.set_tags({"sweep.job": "0"})
    job.log_metrics({"val/acc": 0.9, "test/acc": 0.91, CPU: 57.0, MEMORY: 900.0})
    job.end()
    data = json.loads(results.write(uri, parent.run_id, tmp_path / "results").read_text())
    assert data["jobs"][0]["metrics"] == {"test/acc": 0.91, "val/acc": 0.9}
    assert job.metric_history(CPU) == [57.0]  # still in the run
