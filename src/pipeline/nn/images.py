"""The one conversion from stored digits to model input: uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1]."""

from __future__ import annotations

import torch


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28), pixel / 255 (what every model of the pipeline reads)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images.unsqueeze(1).float().div_(255)
