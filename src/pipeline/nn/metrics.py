"""Classification metrics on tensors: confusion matrix, per-class precision and recall.

Calibration (ECE, reliability bins) lives in calibration.py."""

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
