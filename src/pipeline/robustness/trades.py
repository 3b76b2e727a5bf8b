"""TRADES (Zhang et al. 2019): clean cross-entropy plus beta times the KL divergence
between the model's predictions on clean and on perturbed images.

The perturbation maximises that KL term inside the L-inf eps-ball (pixel space,
clamped to [0, 1]); it needs no label, so it pushes the decision boundary away
from the data instead of fitting adversarial labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._utils import eval_mode
from .attacks import check_eps


def _kl(logits_adv: torch.Tensor, probs_clean: torch.Tensor) -> torch.Tensor:
    """KL(clean || adversarial), summed over classes, per example."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), probs_clean, reduction="none").sum(dim=1)


def trades_perturb(
    model: torch.nn.Module, x: torch.Tensor, eps: float, steps: int = 10, step_size: float | None = None
) -> torch.Tensor:
    """Images within eps of ``x`` that maximise the KL from the clean prediction."""
    eps = check_eps(eps)
    x = x.detach()
    if eps == 0.0:
        return x.clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    lo, hi = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    with eval_mode(model), torch.enable_grad():
        with torch.no_grad():
            probs_clean = F.softmax(model(x), dim=1)
        # A tiny random start: at x itself the KL and its gradient are exactly zero.
        x_adv = torch.min(torch.max(x + 0.001 * torch.randn_like(x), lo), hi)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(_kl(model(x_adv), probs_clean).sum(), x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), lo), hi)
    return x_adv.detach()


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean of cross-entropy on clean images plus beta * KL(clean || adversarial)."""
    natural = F.cross_entropy(logits_clean, y)
    robust = _kl(logits_adv, F.softmax(logits_clean, dim=1)).mean()
    return natural + beta * robust
