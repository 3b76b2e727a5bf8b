"""The smallest change that flips a prediction, per image: DeepFool (Moosavi-Dezfooli et al. 2016).

DeepFool linearises the classifier around the current image, steps onto the nearest linearised
decision boundary (in L2, or in L-inf by the paper's lp variant), clamps to the [0, 1] box, and
repeats from there until the image, pushed (1 + overshoot) times as far from the original as the
walk has gone, changes label. Walking from the clamped image, not summing unclamped steps, matters
on MNIST's mostly black pixels, where a sum keeps pushing them below 0 without moving the image;
the overshoot matters because clamped steps approach the boundary without ever crossing it. What it finds is an
adversarial example, so its size is an upper bound on the true minimal perturbation, tight where
the model is close to linear (exact for a linear model without the [0, 1] box).

Conventions as in attacks.py: float images (N,1,28,28) in [0, 1], logits out, pixel-space norms,
adversarial images clamped to [0, 1], gradients taken w.r.t. the input only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._utils import check_images, eval_mode, require_grad_mode

NORMS = ("l2", "linf")
_TINY = 1e-8  # keeps a zero gradient difference from dividing by zero


@dataclass
class MinimalPerturbation:
    """Per image: the adversarial image, the size of its perturbation in L2 and L-inf, and whether
    the label flipped. An image the model already gets wrong counts as fooled at size 0."""

    adversarial: torch.Tensor
    l2: torch.Tensor
    linf: torch.Tensor
    fooled: torch.Tensor
    iterations: int


def _class_gradients(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, k) and each logit's gradient w.r.t. the input, (n, k, d): one backward pass per class."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    grads = []
    for k in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=k + 1 < logits.shape[1])
        grads.append(g.flatten(1))
    return logits.detach(), torch.stack(grads, dim=1)


def _step(logits: torch.Tensor, grads: torch.Tensor, label: torch.Tensor, norm: str) -> torch.Tensor:
    """The step onto the nearest linearised boundary between `label` and another class, (n, d)."""
    rows = torch.arange(len(label))
    f = logits - logits[rows, label][:, None]  # < 0 for every other class while `label` wins
    w = grads - grads[rows, label][:, None, :]
    # Distance to boundary k: |f_k| / ||w_k||_q, q the dual norm (2 for L2, 1 for L-inf).
    dual = w.norm(p=2 if norm == "l2" else 1, dim=2) + _TINY
    dist = f.abs() / dual
    dist[rows, label] = float("inf")
    k = dist.argmin(dim=1)
    wk, fk, dk = w[rows, k], f[rows, k].abs(), dual[rows, k]
    if norm == "l2":
        return ((fk + _TINY) / dk**2)[:, None] * wk
    return ((fk + _TINY) / dk)[:, None] * wk.sign()


def deepfool(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    norm: str = "l2",
    overshoot: float = 0.02,
    max_iter: int = 50,
    batch_size: int = 500,
) -> MinimalPerturbation:
    """DeepFool against the true labels `y`, `batch_size` images at a time (a batch holds the k-class
    Jacobian of its images in memory). Images still unflipped after `max_iter` steps are not fooled;
    `iterations` is the most any batch took."""
    require_grad_mode("deepfool")
    check_images(x)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if not overshoot >= 0:
        raise ValueError(f"overshoot must be >= 0, got {overshoot!r}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = [
        _deepfool_batch(model, x[s : s + batch_size].detach(), y[s : s + batch_size], norm, overshoot, max_iter)
        for s in range(0, len(x), batch_size)
    ]
    return MinimalPerturbation(
        torch.cat([p.adversarial for p in parts]),
        torch.cat([p.l2 for p in parts]),
        torch.cat([p.linf for p in parts]),
        torch.cat([p.fooled for p in parts]),
        max(p.iterations for p in parts),
    )


def _deepfool_batch(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, overshoot: float, max_iter: int
) -> MinimalPerturbation:
    walk, adversarial = x.clone(), x.clone()
    with eval_mode(model), torch.enable_grad():
        with torch.no_grad():
            active = model(x).argmax(1) == y
        iterations = 0
        while active.any() and iterations < max_iter:
            idx = active.nonzero().squeeze(1)
            logits, grads = _class_gradients(model, walk[idx])
            walk[idx] = (walk[idx] + _step(logits, grads, y[idx], norm).view_as(x[idx])).clamp(0.0, 1.0)
            adversarial[idx] = (x[idx] + (1 + overshoot) * (walk[idx] - x[idx])).clamp(0.0, 1.0)
            iterations += 1
            with torch.no_grad():
                active[idx] = model(adversarial[idx]).argmax(1) == y[idx]
        with torch.no_grad():
            fooled = model(adversarial).argmax(1) != y
    # An image never flipped keeps no perturbation: its size is unknown, not the last attempt's.
    adversarial[~fooled] = x[~fooled]
    delta = (adversarial - x).flatten(1)
    inf = torch.full((len(x),), float("inf"), dtype=x.dtype, device=x.device)
    l2 = torch.where(fooled, delta.norm(p=2, dim=1), inf)
    linf = torch.where(fooled, delta.abs().amax(dim=1), inf)
    return MinimalPerturbation(adversarial, l2, linf, fooled, iterations)


def pgd_radius(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    radii: list[float],
    steps: int = 40,
    batch_size: int = 500,
    seed: int = 0,
) -> torch.Tensor:
    """Per image, the smallest of `radii` (ascending) at which L-inf PGD flips its label, inf if none.

    A second upper bound on the minimal L-inf perturbation, from a stronger attack than DeepFool's
    one-boundary steps: each radius attacks only the images no smaller radius has flipped."""
    from .attacks import pgd

    if list(radii) != sorted(radii) or not radii:
        raise ValueError(f"radii must be a non-empty ascending list, got {radii!r}")
    found = torch.full((len(x),), float("inf"), dtype=x.dtype, device=x.device)
    generator = torch.Generator().manual_seed(seed)
    with eval_mode(model), torch.no_grad():
        found[model(x).argmax(1) != y] = 0.0
    for eps in radii:
        left = (found == float("inf")).nonzero().squeeze(1)
        for s in range(0, len(left), batch_size):
            idx = left[s : s + batch_size]
            adv = pgd(model, x[idx], y[idx], eps, steps=steps, generator=generator)
            with eval_mode(model), torch.no_grad():
                flipped = model(adv).argmax(1) != y[idx]
            found[idx[flipped]] = eps
    return found
