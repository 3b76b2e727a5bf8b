"""Thin wrapper around AutoAttack (Croce & Hein 2020) from the ``pyautoattack`` package.

``pyautoattack`` (PyPI) is a packaged fork of github.com/fra31/auto-attack whose import
name is ``pyautoattack``; it is imported lazily so that the rest of the robustness code
works without it. Its ``device`` default is CPU, so the device is always passed here.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from typing import Any

import torch

from ._utils import eval_mode, require_grad_mode
from .attacks import check_eps

_AFTER = re.compile(r"robust accuracy after ([A-Z-]+): ([0-9.]+)%")


@contextlib.contextmanager
def _keeping_the_trace_function():
    """AutoAttack's check for dynamic defences sets its own trace function and then clears it,
    which would switch off a debugger, a profiler or coverage for the rest of the thread:
    put back whatever was there."""
    tracer = sys.gettrace()
    try:
        yield
    finally:
        sys.settrace(tracer)


class _Progress(logging.Handler):
    """Prints AutoAttack's progress lines (it logs them at DEBUG, silent by default) and
    keeps the robust accuracy after each attack."""

    def __init__(self, echo: bool):
        super().__init__(logging.DEBUG)
        self.echo = echo
        self.after: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.echo:
            print(f"[autoattack] {message}", file=sys.stderr, flush=True)
        if match := _AFTER.search(message):
            self.after[match.group(1).lower()] = float(match.group(2)) / 100


@contextlib.contextmanager
def _progress(echo: bool):
    logger = logging.getLogger("auto-attack")
    handler, level, propagate = _Progress(echo), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # our handler prints; the root logger must not print it twice
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def autoattack_accuracy(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    n: int | None = None,
    device: torch.device | str = "cpu",
    version: str = "standard",
    seed: int = 0,
    attacks: list[str] | None = None,
    batch_size: int = 250,
    verbose: bool = True,
) -> float:
    """Robust accuracy of ``model`` under L-inf AutoAttack on the first ``n`` examples.

    Args:
        eps: L-inf radius in pixel units, in [0, 1].
        n: number of leading examples to evaluate (all when None); the full standard
            attack is expensive (minutes per 1k MNIST images on a GPU).
        device: where the attack runs; the model must already live there.
        version: "standard", "plus", "rand", or "custom" together with ``attacks``
            (names among "apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t").
        seed: AutoAttack seed (it re-seeds torch's global RNG inside its attacks).
        verbose: print AutoAttack's progress (each attack, each batch) to stderr.

    Returns the fraction of the ``n`` examples still classified correctly.
    """
    return autoattack_by_attack(
        model,
        x,
        y,
        eps,
        n=n,
        device=device,
        version=version,
        seed=seed,
        attacks=attacks,
        batch_size=batch_size,
        verbose=verbose,
    )["final"]


def autoattack_by_attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    n: int | None = None,
    device: torch.device | str = "cpu",
    version: str = "standard",
    seed: int = 0,
    attacks: list[str] | None = None,
    batch_size: int = 250,
    verbose: bool = True,
) -> dict[str, float]:
    """Like ``autoattack_accuracy``, but also the robust accuracy after each attack in turn:
    ``{"apgd-ce": .., "apgd-t": .., "fab-t": .., "square": .., "final": ..}``. Each attack
    only runs on the images the earlier ones failed to fool, so the drop at "square" is
    what the black-box attack found beyond the white-box ones."""
    require_grad_mode("autoattack_accuracy")
    eps = check_eps(eps)
    try:
        from pyautoattack import AutoAttack
    except ImportError as err:
        raise ImportError("autoattack_accuracy needs the AutoAttack package: pip install pyautoattack") from err
    if version == "custom" and not attacks:
        raise ValueError("version='custom' needs a list of attacks, e.g. ['apgd-ce', 'apgd-t']")
    if version != "custom" and attacks is not None:
        raise ValueError(f"attacks is only used with version='custom', got version={version!r}")
    n = x.shape[0] if n is None else int(n)
    if not 0 < n <= x.shape[0]:
        raise ValueError(f"n must be in [1, {x.shape[0]}], got {n}")
    x, y = x[:n].detach().to(device), y[:n].detach().to(device)

    adversary = AutoAttack(model, eps=eps, norm="Linf", version=version, attacks=attacks, device=device, seed=seed)
    with eval_mode(model), torch.enable_grad(), _progress(verbose) as progress, _keeping_the_trace_function():
        _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    # y_adv holds the final prediction per example (clean prediction if never fooled).
    return {**progress.after, "final": float((y_adv.to(y.device) == y).float().mean())}
