"""Gradient norms per layer of a freshly initialised MLP: where the error signal vanishes or
explodes before training starts (Glorot & Bengio 2010; He et al. 2015).

A pure function on a model and tensors: no files, no tracking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.nn.images import to_model_input
from pipeline.nn.models import MLP


def layer_gradient_norms(fresh: MLP, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The L2 norm of each linear layer's weight gradient (layer1 = the first hidden layer, the
    last = the output layer) and the loss, on uint8 images (N, 28, 28), as the first training step
    sees them: training mode (batch statistics, dropout with a fixed seed)."""
    fresh.train()
    fresh.zero_grad(set_to_none=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        loss = F.cross_entropy(fresh(to_model_input(images)), labels)
    loss.backward()
    grads = [layer.weight.grad for layer in fresh.linear_layers()]
    out = {f"layer{i}": float(g.norm()) for i, g in enumerate(grads, start=1) if g is not None}
    fresh.zero_grad(set_to_none=True)
    return out | {"loss": float(loss)}
