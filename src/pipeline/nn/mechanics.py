"""The mechanics of a trained ReLU MLP, measured on the model itself.

- ``numpy_logits``: the forward pass written out in NumPy (normalise, then matrix products
  and ReLUs), compared with the model's own predictions;
- ``at_initialisation``: a freshly initialised network guesses (about 10 %) and its loss is
  about ln 10, the cross-entropy of a uniform guess over ten digits;
- ``gradient_check``: torch.autograd.gradcheck in float64, against finite differences;
- ``backward_cost``: the backward pass timed against the forward pass, beside the
  2 x (number of parameters) forward passes central finite differences would need.

Pure functions on a model and tensors: no files, no tracking.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from typing import TypeGuard

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.nn.images import to_model_input
from pipeline.nn.models import MLP, Normalize, count_parameters


def is_relu_mlp(model: object) -> TypeGuard[MLP]:
    # Batch norm is no plain matrix product: the NumPy pass and its checks leave it out.
    return (
        isinstance(model, MLP)
        and any(isinstance(m, torch.nn.ReLU) for m in model.net)
        and not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.net)
    )


def numpy_logits(model: MLP, images: np.ndarray) -> np.ndarray:
    """The ReLU MLP's logits for uint8 images (N, 28, 28), in NumPy alone."""
    norm = next(m for m in model.net if isinstance(m, Normalize))
    layers = [(lin.weight.detach().numpy(), lin.bias.detach().numpy()) for lin in model.linear_layers()]
    x = (images.reshape(len(images), -1).astype(np.float32) / 255 - float(norm.mean)) / float(norm.std)
    for i, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)  # ReLU between layers, none after the last
    return x


def numpy_agreement(model: MLP, images: torch.Tensor, batch_size: int = 2000) -> dict:
    """How far the NumPy forward pass is from the model, on uint8 images (N, 28, 28)."""
    model.eval()
    max_diff, agree = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size]
            ours = model(to_model_input(batch)).numpy()
            theirs = numpy_logits(model, batch.numpy())
            max_diff = max(max_diff, float(np.abs(ours - theirs).max()))
            agree += int((ours.argmax(1) == theirs.argmax(1)).sum())
    return {"numpy_max_logit_diff": max_diff, "numpy_prediction_agreement": agree / len(images)}


def at_initialisation(fresh: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy and loss of an untrained network, beside ln 10."""
    fresh.eval()
    with torch.no_grad():
        logits = fresh(to_model_input(images))
    return {
        "init_acc": float((logits.argmax(1) == labels).double().mean()),
        "init_loss": float(F.cross_entropy(logits, labels)),
        "ln10": math.log(10),
    }


def _loss_of(model: torch.nn.Module, names: list[str], x: torch.Tensor, y: torch.Tensor):
    """The loss as a function of the named parameters (the others fixed at their values)."""

    def loss(*values: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(torch.func.functional_call(model, dict(zip(names, values, strict=True)), (x,)), y)

    return loss


def gradient_check(model: MLP, images: torch.Tensor, labels: torch.Tensor, n_images: int = 4) -> dict:
    """torch.autograd.gradcheck of the loss in float64 on a few images: every parameter at once
    in fast mode (random directional derivatives), and the output layer entry by entry."""
    double = copy.deepcopy(model).double().eval()  # the trained model is left in float32
    x = to_model_input(images[:n_images]).double()
    y = labels[:n_images]
    params = dict(double.named_parameters())
    every = list(params)
    last = every[-2:]  # the output layer's weight and bias
    inputs = [params[n].detach().clone().requires_grad_(True) for n in every]
    fast = torch.autograd.gradcheck(_loss_of(double, every, x, y), inputs, fast_mode=True, raise_exception=False)
    started = time.perf_counter()
    entries = [params[n].detach().clone().requires_grad_(True) for n in last]
    full = torch.autograd.gradcheck(_loss_of(double, last, x, y), entries, raise_exception=False)
    return {
        "gradcheck_all_fast": bool(fast),
        "gradcheck_output_layer": bool(full),
        "gradcheck_output_layer_entries": sum(e.numel() for e in entries),
        "gradcheck_output_layer_s": time.perf_counter() - started,
    }


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations are not the pass's cost
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def backward_cost(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256, repeats: int = 30
) -> dict:
    """Median seconds of a forward pass and of forward + backward on one batch (float32).

    The backward pass alone is their difference. Central finite differences need two forward
    passes per parameter for the same gradient; their time is estimated from the measured
    forward pass (running them would take minutes, which is the point)."""
    model.train()
    x, y = to_model_input(images[:batch]), labels[:batch]

    def forward() -> None:  # as in training: the graph is recorded, then dropped
        F.cross_entropy(model(x), y)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    fwd = _median_seconds(forward, repeats)
    both = _median_seconds(forward_backward, repeats)
    model.zero_grad(set_to_none=True)
    model.eval()
    n = count_parameters(model)
    backward = max(both - fwd, 0.0)
    return {
        "forward_ms": 1000 * fwd,
        "backward_ms": 1000 * backward,
        "backward_over_forward": backward / fwd,
        "gradient_over_forward": both / fwd,
        "finite_difference_passes": 2 * n,
        "finite_difference_s": 2 * n * fwd,
        "finite_difference_over_gradient": 2 * n * fwd / both,
    }


def measure(model: MLP, fresh: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Every measurement above, as one flat dict (the run's mechanics/* metrics)."""
    out = numpy_agreement(model, images)
    out.update(at_initialisation(fresh, images, labels))
    out.update({k: float(v) for k, v in gradient_check(model, images, labels).items()})
    out.update(backward_cost(model, images, labels))
    return out
