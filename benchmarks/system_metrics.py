"""What the runs' system metrics cost a training command, as a user waits for it.

    ours       a whole 1-epoch `python -m pipeline.stages.train` (seed MLP: train, evaluate, MLflow
               run, logged model) with MLflow's system-metrics monitor sampling every
               `tracking.system_metrics_interval` seconds (the default: on, every 2 s)
    baseline   the same command with `tracking.system_metrics=false`

Whole processes, interleaved (on, off, on, off, ...), each in a fresh run folder of one temp store.
Every "on" run is checked to have recorded system/cpu_utilization_percentage, and every "off" run to
have recorded none; the samples per run are in the row's checks.

    monitor CPU    the monitor's own cost, in this process: CPU seconds (process time, which the
                   machine's other load does not inflate) over 10 s of an idle block sampled every
                   0.5 s, per sample; times the samples of a run, it bounds what the monitor can
                   add to the command
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from benchmarks.common import data_root, interleaved, median, row, timed_process

PY = sys.executable
CPU = "system/cpu_utilization_percentage"


def _samples(run_dir: Path, uri: str) -> int:
    """How many CPU samples the run in `run_dir` recorded."""
    from pipeline.tracking.runs import Run

    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    return len(Run(uri, run_id).metric_history(CPU))


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    repeats = 1 if quick else repeats
    # Quick (the tests): a training of a second or two, so the monitor samples often enough to be seen.
    extra = ["data.train_subset=5000", "tracking.system_metrics_interval=0.1"] if quick else []
    counter = iter(range(10**6))
    samples: dict[str, list[int]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="bench-system-metrics-") as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"

        def command(on: bool) -> float:
            run_dir = tmp / f"run{next(counter)}"
            cmd = [
                PY,
                "-m",
                "pipeline.stages.train",
                f"run_dir={run_dir}",
                f"hydra.run.dir={run_dir}",
                f"tracking.uri={uri}",
                f"data.root={data_root()}",
                "trainer.max_epochs=1",
                f"tracking.system_metrics={'true' if on else 'false'}",
                *extra,
            ]
            seconds = timed_process(cmd, tmp)[0]
            samples["on" if on else "off"].append(_samples(run_dir, uri))
            return seconds

        whole = interleaved({"on": lambda: command(True), "off": lambda: command(False)}, repeats)
    per_sample = _monitor_cpu_per_sample(tmp_seconds=2 if quick else 10)
    if not all(samples["on"]) or any(samples["off"]):
        raise RuntimeError(f"system metrics recorded where they should not be, or missing: {samples}")
    on, off = median(whole["on"]), median(whole["off"])
    return [
        row(
            "system_metrics",
            f"train, seed MLP 1 epoch, whole process: system metrics on (every {0.1 if quick else 2:g} s) vs off",
            on,
            off,
            "s",
            ("<=", 1.05, "ratio"),
            note=f"{on - off:+.2f} s a run; {median(samples['on']):g} CPU samples a run",
            samples_on=whole["on"],
            samples_off=whole["off"],
            system_samples_on=samples["on"],
        ),
        row(
            "system_metrics",
            "the monitor's own CPU time per sample (CPU, memory, disk, network, the run's status, one write)",
            per_sample * 1000,
            None,
            "ms",
            note=f"{per_sample * median(samples['on']):.2f} s of CPU for a run's {median(samples['on']):g} samples",
        ),
    ]


def _monitor_cpu_per_sample(tmp_seconds: float) -> float:
    """CPU seconds this process spends per sample while the monitor samples an idle block every 0.5 s."""
    import time

    from pipeline.tracking.runs import create_run
    from pipeline.tracking.system_metrics import system_metrics

    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        run = create_run(f"sqlite:///{tmp}/mlflow.db", "bench", "monitor", {})
        run.open()
        run.metric_history(CPU)  # the store's tables made before the clock starts
        started = time.process_time()
        with system_metrics(run, {"system_metrics": True, "system_metrics_interval": 0.5}):
            time.sleep(tmp_seconds)
        cpu = time.process_time() - started
        return cpu / max(1, len(run.metric_history(CPU)))
