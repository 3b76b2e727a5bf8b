"""Whole commands, as a user waits for them: `python -m pipeline.stages.train` against a bare script.

    train, 8 epochs   `python -m pipeline.stages.train` (seed MLP, defaults: train, evaluate, MLflow run,
                      registered model) vs benchmarks/bare_train.py doing the same 8 epochs on the
                      same tensors with a test evaluation after each; whole processes, interleaved
    stack imports     the bare script that also imports Lightning, MLflow's SQLite store and Hydra
                      (`--import-stack`) vs the bare script: what the libraries alone cost a command
    stack floor       the command against the bare script that imports them and runs its steps through
                      Lightning's own loop (`--import-stack --lightning-loop`): what the pipeline adds
                      to the floor its libraries set
    fixed cost        a 1-epoch `python -m pipeline.stages.train` minus the bare script's own 1-epoch loop
                      time: imports, store, run, checkpoint, evaluation, model logging, figures
    sweep job         what one more job adds to an in-process sweep (`-m seed=...`, 1 epoch each)
                      beyond its own training and evaluation: (T(3 jobs) - T(1 job)) / 2 minus the
                      per-job training+evaluation the runs' own logs report (2 jobs with --quick)

Every command runs in a fresh temp directory with a fresh MLflow store and the prepared MNIST.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from benchmarks.common import PROJECT, data_root, interleaved, median, row, timed_process

PY = sys.executable
BARE = PROJECT / "benchmarks" / "bare_train.py"


def _train_cmd(tmp: Path, name: str, *overrides: str, multirun: bool = False) -> list[str]:
    where = [f"hydra.sweep.dir={tmp / name}"] if multirun else [f"run_dir={tmp / name}", f"hydra.run.dir={tmp / name}"]
    return [
        PY,
        "-m",
        "pipeline.stages.train",
        *(["-m"] if multirun else []),
        *where,
        f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
        f"data.root={data_root()}",
        *overrides,
    ]


def _work_seconds(log: str) -> float:
    """Training plus evaluation time the runs themselves report (`[train] done in Xs`, evaluation)."""
    return sum(float(s) for s in re.findall(r"\[train\] done in ([0-9.]+)s", log))


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    repeats = 1 if quick else min(repeats, 3)
    epochs = 1 if quick else 8
    extra = ["data.train_subset=5000"] if quick else []
    bare_extra = ["--train-size", "5000"] if quick else []
    counter = iter(range(10**6))
    with tempfile.TemporaryDirectory(prefix="bench-command-") as tmp:
        tmp = Path(tmp)
        loops: dict[str, list[float]] = {"bare": [], "bare1": [], "stack": [], "floor": []}

        def bare(epochs_: int, key: str, *flags: str) -> float:
            seconds, out = timed_process(
                [PY, str(BARE), "--data", str(data_root()), "--epochs", str(epochs_), *bare_extra, *flags], tmp
            )
            # Its one JSON line; Lightning's own messages may come after it in the merged output.
            result = next(line for line in reversed(out.splitlines()) if line.startswith("{"))
            loops[key].append(json.loads(result)["loop_s"])
            return seconds

        def ours(epochs_: int) -> float:
            cmd = _train_cmd(tmp, f"run{next(counter)}", f"trainer.max_epochs={epochs_}", *extra)
            return timed_process(cmd, tmp)[0]

        sides = {
            "ours": lambda: ours(epochs),
            "bare": lambda: bare(epochs, "bare"),
            "stack": lambda: bare(epochs, "stack", "--import-stack"),
            "floor": lambda: bare(epochs, "floor", "--import-stack", "--lightning-loop"),
        }
        if epochs != 1:
            sides |= {"ours1": lambda: ours(1), "bare1": lambda: bare(1, "bare1")}
        whole = interleaved(sides, repeats)
        if epochs == 1:  # --quick: the whole command is already the 1-epoch one
            whole["ours1"], loops["bare1"] = whole["ours"], loops["bare"]

        # One job against `more` jobs (3; 2 in a --quick smoke test): the difference, per extra job.
        more = 2 if quick else 3
        sweeps: dict[str, list[float]] = {"one": [], "more": [], "work1": [], "work_more": []}
        for _ in range(1 if quick else min(repeats, 2)):
            for n, key in ((1, "one"), (more, "more")):
                seeds = ",".join(str(s) for s in range(1, n + 1))
                seconds, log = timed_process(
                    _train_cmd(
                        tmp, f"sweep{next(counter)}", f"seed={seeds}", "trainer.max_epochs=1", *extra, multirun=True
                    ),
                    tmp,
                )
                sweeps[key].append(seconds)
                sweeps["work1" if n == 1 else "work_more"].append(_work_seconds(log))

    med = {k: median(v) for k, v in whole.items()}
    fixed = med["ours1"] - median(loops["bare1"])
    per_job = (median(sweeps["more"]) - median(sweeps["one"])) / (more - 1)
    per_job_work = (median(sweeps["work_more"]) - median(sweeps["work1"])) / (more - 1)
    return [
        row(
            "command",
            f"train, seed MLP {epochs} epoch(s), whole process vs bare script",
            med["ours"],
            med["bare"],
            "s",
            ("<=", 1.5, "ratio"),
            samples=whole["ours"],
            samples_bare=whole["bare"],
            bare_loop_s=loops["bare"],
        ),
        row(
            "command",
            "train, the stack's imports: the bare script importing lightning, mlflow's store and hydra, vs bare",
            med["stack"],
            med["bare"],
            "s",
            note=f"ours / these {med['ours'] / med['stack']:.2f}x: what the pipeline adds to its libraries' imports",
            samples=whole["stack"],
            samples_bare=whole["bare"],
            bare_loop_s=loops["stack"],
        ),
        row(
            "command",
            f"train, seed MLP {epochs} epoch(s), whole process vs the stack's floor (its imports and Lightning's loop)",
            med["ours"],
            med["floor"],
            "s",
            ("<=", 1.25, "ratio"),
            note=f"floor / bare {med['floor'] / med['bare']:.2f}x",
            samples=whole["ours"],
            samples_floor=whole["floor"],
            floor_loop_s=loops["floor"],
        ),
        row(
            "command",
            "fixed cost of a run: 1-epoch command minus the bare 1-epoch loop",
            fixed,
            None,
            "s",
            ("<=", 3, "ours"),
            note=f"command {med['ours1']:.1f} s, bare loop {median(loops['bare1']):.1f} s",
            samples=whole["ours1"],
            bare_loop_s=loops["bare1"],
        ),
        row(
            "command",
            "sweep: one more 1-epoch job, beyond its own training",
            per_job - per_job_work,
            None,
            "s",
            ("<=", 3, "ours"),
            note=f"{per_job:.1f} s per job, of which {per_job_work:.1f} s training",
            samples_one=sweeps["one"],
            samples_more=sweeps["more"],
            jobs_more=more,
            work_s_one=sweeps["work1"],
            work_s_more=sweeps["work_more"],
            per_job_s=per_job,
            per_job_work_s=per_job_work,
            # A difference of two differences of medians, about 1 s: on a busy machine, or from the one
            # sample of --quick, noise can carry it below zero. It is reported as measured.
            difference=True,
        ),
    ]
