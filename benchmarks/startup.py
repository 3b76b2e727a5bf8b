"""Start-up: how long `python -m pipeline.stages.train` takes before it does anything useful.

    --help               Hydra's help; must not import torch
    config error         `data.batch_size=0`, rejected with "error: ..." before torch is imported
    first training step  a real run (1 training batch, 1 validation batch, MLflow store in a temp
                         dir): time until the "[train] epoch 1/1" line, i.e. an upper bound on the
                         time to the first step (it includes that step and one validation batch)
baselines: `python -c "import torch"` and `python -c "import lightning"` (the floor for any
training command). Every command runs in a fresh process, interleaved, median of the repeats.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import clean_env, data_root, interleaved, median, row, skipped

PY = sys.executable


def wall(cmd: list[str], cwd: Path, expect_rc: int = 0, expect: str | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    if done.returncode != expect_rc or (expect and expect not in done.stdout + done.stderr):
        raise RuntimeError(
            f"{cmd[1:]} exited {done.returncode}, expected {expect_rc} and {expect!r}:\n"
            f"{done.stdout[-1000:]}{done.stderr[-1000:]}"
        )
    return seconds


def until_line(cmd: list[str], cwd: Path, marker: str) -> float:
    """Seconds until a line starting with `marker` appears; then stop the run (its own process group)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen, tail = None, []
    try:
        for line in proc.stdout:
            if line.startswith(marker):
                seen = time.perf_counter() - start
                break
            tail = ([*tail, line])[-20:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        proc.stdout.close()
    if seen is None:
        raise RuntimeError(f"no line starting with {marker!r} from {cmd[1:]}:\n{''.join(tail)}")
    return seen


def imports_torch(cmd: list[str], cwd: Path) -> bool:
    """Whether a command imports torch at all (python -X importtime lists every import)."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    return any(
        line.startswith("import time:") and line.split("|")[-1].strip() == "torch" for line in done.stderr.splitlines()
    )


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    from pipeline.tracking.client import client
    from pipeline.tracking.runs import experiment_id

    repeats = 1 if quick else repeats
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)  # the working directory of every command: Hydra and MLflow write nothing in the repo
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        experiment_id(client(uri), "mnist", uri)  # an existing store, as a user has one
        train = [PY, "-m", "pipeline.stages.train"]
        error_cmd = [*train, "data.batch_size=0"]
        runs = iter(range(10**6))
        first_step = lambda: until_line(  # noqa: E731
            [
                *train,
                f"run_dir={tmp / f'run{next(runs)}'}",
                f"hydra.run.dir={tmp / 'hydra'}",
                f"tracking.uri={uri}",
                f"data.root={data_root()}",
                "tracking.log_model=false",
                "trainer.max_epochs=1",
                "+trainer.limit_train_batches=1",
                "+trainer.limit_val_batches=1",
            ],
            tmp,
            "[train] epoch 1/1",
        )
        variants = {
            "torch": lambda: wall([PY, "-c", "import torch"], tmp),
            "help": lambda: wall([*train, "--help"], tmp, expect="Configuration groups"),
            "error": lambda: wall(error_cmd, tmp, expect_rc=2, expect="error: data.batch_size"),
        }
        if not quick:  # the two slow ones (seconds each): full size only
            variants.update(lightning=lambda: wall([PY, "-c", "import lightning"], tmp), first_step=first_step)
        got = interleaved(variants, repeats)
        help_torch, error_torch = imports_torch([*train, "--help"], tmp), imports_torch(error_cmd, tmp)
    med = {k: median(v) for k, v in got.items()}
    return [
        row(
            "startup",
            "train --help vs import torch",
            med["help"],
            med["torch"],
            "s",
            ("<", 1, "ratio"),
            note="imports torch" if help_torch else "torch not imported",
            torch_imported=help_torch,
            samples=got["help"],
        ),
        row(
            "startup",
            "train data.batch_size=0 (config error) vs import torch",
            med["error"],
            med["torch"],
            "s",
            ("<", 1, "ratio"),
            note="imports torch" if error_torch else "torch not imported",
            torch_imported=error_torch,
            samples=got["error"],
        ),
    ] + (
        [
            row(
                "startup",
                "train: command to first step vs import lightning",
                med["first_step"],
                med["lightning"],
                "s",
                note="upper bound: end of a 1-step epoch",
                samples=got["first_step"],
                samples_lightning=got["lightning"],
                samples_torch=got["torch"],
            ),
        ]
        if not quick
        else [skipped("startup", "train: command to first step", "full size only")]
    )
