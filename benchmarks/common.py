"""What every benchmark shares: timing, medians, A/B interleaving, result rows, the machine.

A result row is a plain dict (it goes to JSON as is):
    benchmark, case, ours, baseline, unit, ratio (= ours / baseline), target, met, note, checks
`target` is a human string such as "ratio >= 30" or "ours <= 10"; `met` is its verdict
(None where there is no target or nothing was measured).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The prepared MNIST: $BENCH_DATA_ROOT (the tests point it at theirs), else the project's data/mnist."""
    return Path(os.environ.get("BENCH_DATA_ROOT") or PROJECT / "data" / "mnist")


_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of fn takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each variant once per round, in turn (A, B, A, B, ...), so load spikes hit all alike.

    Each callable returns its own measurement (seconds, images/s, ...).
    """
    out: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            out[name].append(fn())
    return out


def row(
    benchmark: str,
    case: str,
    ours: float | None,
    baseline: float | None = None,
    unit: str = "",
    target: tuple[str, float, str] | None = None,
    note: str = "",
    **checks,
) -> dict:
    """One line of the results table.

    target: (op, value, on) with on = "ratio" or "ours", e.g. (">=", 30, "ratio").
    """

    def number(v):
        return v if isinstance(v, (int, float)) and math.isfinite(v) else None

    ours, baseline = number(ours), number(baseline)
    ratio = ours / baseline if ours is not None and baseline else None
    met, target_text = None, ""
    if target:
        op, value, on = target
        target_text = f"{on} {op} {value:g}"
        subject = ratio if on == "ratio" else ours
        met = bool(_OPS[op](subject, value)) if subject is not None else None
    return {
        "benchmark": benchmark,
        "case": case,
        "ours": ours,
        "baseline": baseline,
        "unit": unit,
        "ratio": ratio,
        "target": target_text,
        "met": met,
        "note": note,
        "checks": checks,
    }


def skipped(benchmark: str, case: str, why: str) -> dict:
    return row(benchmark, case, None, note=f"skipped: {why}", skipped=True)


def machine() -> dict:
    """What the figures were measured on; the load average says how busy it was."""
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    info = {
        "host": platform.node() or "local",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in ("lightning", "torchvision"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    try:
        info["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.3g}"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| benchmark | ours | baseline | ratio | target | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        ours = fmt(r["ours"]) + (unit if r["ours"] is not None else "")
        base = fmt(r["baseline"]) + (unit if r["baseline"] is not None else "")
        ratio = f"{fmt(r['ratio'])}x" if r["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        name = f"{r['benchmark']}: {r['case']}"
        if r["note"]:
            name += f" ({r['note']})"
        lines.append(f"| {name} | {ours} | {base} | {ratio} | {r['target'] or '—'} | {met} |")
    return "\n".join(lines)


def machine_header(info: dict) -> str:
    cuda = f", CUDA: {info['cuda']}" if info.get("cuda") else ", no CUDA"
    return (
        f"Machine: {info['cpu']}, {info['cores_usable']} cores usable ({info['torch_threads']} torch threads)"
        f"{cuda}; Python {info['python']}, torch {info['torch']}, lightning {info['lightning']}, "
        f"torchvision {info['torchvision']}; load average {info['load_average_1m']:.2f} at start; "
        f"{info['date']}, commit {info['git_commit']}"
    )


def clean_env() -> dict:
    """Environment for child processes: never the user's MLflow store, output unbuffered."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONUNBUFFERED"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def timed_process(cmd: list[str], cwd: Path, env: dict | None = None, timeout: float = 1800) -> tuple[float, str]:
    """Wall seconds of one whole process, as a user waits for it, and its output; its tail in the error if it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[1:4])} ... exited {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return seconds, done.stdout + done.stderr


def train_like_pipeline(cfg, run_dir: Path, callbacks=(), init_state: dict | None = None, command: str = "benchmark"):
    """Train as `pipeline.stages.train.fit` does: the same Classifier, Trainer, callbacks and an MLflow run
    (into cfg.tracking.uri), plus `callbacks`; optionally from given initial weights. Returns (trainer, module)."""
    import lightning as L

    from pipeline.stages.train import build_trainer
    from pipeline.tracking.runs import recording, start_run
    from pipeline.training.datamodule import MNISTDataModule
    from pipeline.training.module import Classifier

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = Classifier.from_config(cfg)
    if init_state is not None:
        module.net.load_state_dict(init_state)
    run = start_run(cfg, command)  # not timed: once per run, not per epoch
    with recording(run, reopen=False):
        trainer, _ = build_trainer(cfg, run_dir, run)
        trainer.callbacks += list(callbacks)
        trainer.fit(module, datamodule=MNISTDataModule.from_config(cfg))
    return trainer, module
