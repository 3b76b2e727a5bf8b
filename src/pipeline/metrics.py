"""Classification metrics on tensors: confusion matrix, per-class precision/recall, calibration."""

from __future__ import annotations

import torch


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Rows are true classes, columns predicted classes."""
    return torch.bincount(labels * num_classes + preds, minlength=num_classes**2).reshape(num_classes, num_classes)


def precision_recall(confusion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    return precision, recall


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> list[dict]:
    """Equal-width confidence bins: mean confidence, accuracy and count of each."""
    confidence, preds = probs.max(1)
    correct = (preds == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=confidence.dtype, device=confidence.device)
    # bin i holds (edge_i, edge_{i+1}]; a confidence of exactly 0 joins bin 0
    which = torch.bucketize(confidence, edges[1:-1], right=False)
    rows = []
    for i in range(n_bins):
        mask = which == i
        count = int(mask.sum())
        rows.append({
            "bin_lower": float(edges[i]), "bin_upper": float(edges[i + 1]), "count": count,
            "confidence": float(confidence[mask].double().mean()) if count else 0.0,
            "accuracy": float(correct[mask].mean()) if count else 0.0,
        })
    return rows


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    rows = reliability_bins(probs, labels, n_bins)
    total = sum(r["count"] for r in rows)
    return sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows) / max(total, 1)
