"""AutoAttack wrapper (pyautoattack)."""

from __future__ import annotations

import sys

import pytest
import torch

pytest.importorskip("pyautoattack")

from pipeline.robustness.attacks import accuracy_under_attack, pgd
from pipeline.robustness.autoattack import autoattack_accuracy


@pytest.mark.slow
def test_apgd_ce_is_at_least_as_strong_as_pgd(small_model, eval_batch):
    x, y = eval_batch
    x, y = x[:64], y[:64]
    small_model.train()
    try:
        acc = autoattack_accuracy(small_model, x, y, 0.15, n=64, device="cpu", version="custom", attacks=["apgd-ce"])
        assert small_model.training
    finally:
        small_model.eval()
    clean = accuracy_under_attack(small_model, x, y, None)
    pgd_acc = accuracy_under_attack(small_model, x, y, lambda m, a, b: pgd(m, a, b, 0.15, random_start=False))
    assert acc <= clean
    assert acc <= pgd_acc + 0.05
    again = autoattack_accuracy(small_model, x, y, 0.15, n=64, device="cpu", version="custom", attacks=["apgd-ce"])
    assert again == acc  # seeded


def test_standard_version_runs(small_model, eval_batch):
    x, y = eval_batch
    # At eps=0.3 APGD-CE already fools every example, so the remaining attacks are skipped.
    assert autoattack_accuracy(small_model, x, y, 0.3, n=8, device=torch.device("cpu")) <= 0.125


def test_the_callers_trace_function_survives(small_model, eval_batch):
    """AutoAttack clears the thread's trace function; a debugger or coverage must keep running."""
    x, y = eval_batch
    outer = sys.gettrace()  # coverage's, when the tests run under it

    def tracer(frame, event, arg):
        return None

    sys.settrace(tracer)
    try:
        autoattack_accuracy(small_model, x, y, 0.3, n=8, device="cpu")
        kept = sys.gettrace()
    finally:
        sys.settrace(outer)
    assert kept is tracer


def test_argument_checks(small_model, eval_batch):
    x, y = eval_batch
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        autoattack_accuracy(small_model, x, y, 2.0, n=4, device="cpu")
    with pytest.raises(ValueError, match="custom"):
        autoattack_accuracy(small_model, x, y, 0.1, n=4, device="cpu", version="custom")
    with pytest.raises(ValueError, match="n must be"):
        autoattack_accuracy(small_model, x, y, 0.1, n=0, device="cpu")
    with torch.inference_mode(), pytest.raises(RuntimeError, match="no_grad"):
        autoattack_accuracy(small_model, x, y, 0.1, n=4, device="cpu")
