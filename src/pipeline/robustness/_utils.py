"""Small helpers shared by the robustness modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode, then restore every submodule's own training flag.

    Restoring per submodule (not just ``model.train(was_training)``) keeps mixed
    setups intact, e.g. a training model with a deliberately frozen BatchNorm.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def require_grad_mode(what: str) -> None:
    """Raise if called under ``torch.inference_mode``, where autograd cannot be re-enabled."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{what} needs gradients w.r.t. the input, which torch.inference_mode() forbids "
            "(torch.enable_grad() cannot undo it). Call it outside inference_mode: under "
            "torch.no_grad() or with no grad context at all."
        )


def check_images(x: torch.Tensor, name: str = "x") -> None:
    """Validate the (N,1,28,28) floating-point image convention."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor with pixels in [0,1], got dtype {x.dtype}")
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"{name} must have shape (N,1,28,28), got {tuple(x.shape)}")
