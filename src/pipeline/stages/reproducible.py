"""Reproducible mode (`reproducible: true`): the same config and seed give bit-identical weights,
metrics.json and robustness.json on any x86-64 CPU, not only on the machine that made them.

Without it, torch picks its kernels by what the CPU offers: ATen's vectorised loops (AVX2, AVX-512),
MKL's BLAS code path, oneDNN's convolutions and the number of threads a sum is split over. Each
choice adds float rounding in its own order, so the same seed drifts apart from the first epoch
(a fresh clone's `dvc repro` on another CPU: 97.36 % -> 97.48 % test accuracy). The mode pins each
choice to one that every x86-64 CPU has, measured lever by lever (docs/troubleshooting.md):

- ATen's loops at their baseline build (ATEN_CPU_CAPABILITY=default), read once when torch loads;
- MKL's SSE2 code path, the same on Intel and AMD (MKL_CBWR=COMPATIBLE), read once when MKL loads;
- a fixed number of threads (THREADS), since a parallel sum adds its parts in an order that follows it;
- oneDNN off (its kernels are chosen by the CPU's instruction set), so convolutions run on ATen and MKL.

torch.use_deterministic_algorithms is no lever here: on CPU it changed no byte of the tiny runs
(trainer.deterministic, on in conf/trainer/cpu.yaml, sets it for training all the same).

The two variables must be in the environment before torch is imported: the command entry points
(train, evaluate, robustness) call `enter` after composing the config and before the first torch
import, and `enter` checks, once torch is loaded, that ATen really runs at the baseline.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

# Read by ATen and MKL once, when torch loads them.
ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
# Every machine runs this many threads in the mode, whatever its core count: results depend on it.
THREADS = 1

T = TypeVar("T")


class ReproducibleModeError(RuntimeError):
    """The mode could not be applied: torch had loaded before its environment was set."""


def is_on(cfg: DictConfig) -> bool:
    return bool(cfg.get("reproducible", False))  # a true or false checked by config.settings.validate


def enter(cfg: DictConfig) -> bool:
    """In reproducible mode, set the environment and torch's settings for this process; True if on.

    Outside values of the variables are replaced: on another CPU they are what that CPU would pick.
    """
    if not is_on(cfg):
        return False
    changes = {k: v for k, v in ENVIRONMENT.items() if os.environ.get(k) != v}
    if changes and "torch" in sys.modules:
        raise ReproducibleModeError(
            f"reproducible mode needs {_as_env(ENVIRONMENT)} before torch is imported, and torch was already "
            f"loaded; run the command in a fresh process, or prefix it with {_as_env(ENVIRONMENT)}"
        )
    os.environ.update(ENVIRONMENT)
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability != "DEFAULT":
        raise ReproducibleModeError(f"ATEN_CPU_CAPABILITY=default did not take effect: torch runs {capability}")
    torch.set_num_threads(THREADS)
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # the documented switch; typed as its descriptor
    return True


def _as_env(variables: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in variables.items())


def reproducibly(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """`task` as a command runs it: `enter` first, so the mode holds before the task imports torch."""

    def command(cfg: DictConfig) -> T:
        enter(cfg)
        return task(cfg)

    return command
