"""Confidence calibration: expected calibration error and reliability-diagram bins.

Following Guo et al. (2017): the top-class confidence is binned into ``n_bins``
equal-width bins ``(lo, hi]`` over [0, 1]; ECE is the count-weighted mean of
``|accuracy - confidence|`` over bins.
"""

from __future__ import annotations

import torch


def _confidences(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (N, C), got {tuple(probs.shape)}")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must have shape ({probs.shape[0]},), got {tuple(labels.shape)}")
    if probs.shape[0] == 0:
        raise ValueError("calibration needs at least one example")
    probs = probs.detach().double().cpu()
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1] (apply softmax to logits first)")
    confidence, prediction = probs.max(dim=1)
    return confidence, (prediction == labels.detach().cpu()).double()


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Per-bin statistics for a reliability diagram.

    Returns a dict of float64 CPU tensors of length ``n_bins``: ``lower``/``upper`` bin
    edges, mean ``confidence`` and ``accuracy`` of the examples in each bin (NaN where
    the bin is empty) and ``count``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence, correct = _confidences(probs, labels)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    # right=False: bin i holds edges[i] < c <= edges[i+1]; a confidence of exactly 0 goes to bin 0.
    index = torch.bucketize(confidence, edges[1:-1], right=False)
    count = torch.bincount(index, minlength=n_bins).double()
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = torch.bincount(index, weights=correct, minlength=n_bins)
    safe = count.clamp(min=1)
    empty = count == 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return {
        "lower": edges[:-1],
        "upper": edges[1:],
        "confidence": torch.where(empty, nan, conf_sum / safe),
        "accuracy": torch.where(empty, nan, acc_sum / safe),
        "count": count,
    }


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE = sum over bins of (count / N) * |accuracy - confidence|, in [0, 1]."""
    bins = reliability_bins(probs, labels, n_bins)
    full = bins["count"] > 0
    gap = (bins["accuracy"][full] - bins["confidence"][full]).abs()
    return float((bins["count"][full] * gap).sum() / bins["count"].sum())
