"""White-box L-inf attacks (FGSM, PGD) in pixel space.

Conventions: a model maps float images ``(N,1,28,28)`` in ``[0,1]`` to logits ``(N,10)``
(normalisation lives inside the model); perturbations are L-inf in pixel space and
adversarial images are clamped to ``[0,1]``; everything runs on the inputs' device.

The attacks enable autograd themselves, so they may be called under ``torch.no_grad()``,
but NOT under ``torch.inference_mode()`` (a RuntimeError says so). The model is put in
eval mode for the attack and its training flags are restored afterwards; gradients are
taken w.r.t. the input only (``torch.autograd.grad``), so no parameter ``.grad`` is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import names
from ._utils import eval_mode, require_grad_mode

AttackFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def check_eps(eps: float) -> float:
    """Return ``eps`` as a float, or raise ValueError unless it lies in [0, 1] (pixel scale)."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number in the range [0, 1] (pixel scale), got {eps!r}") from None
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"eps must be in the range [0, 1] (pixel scale), got {eps!r}")
    return value


def _check_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise ValueError(f"x must be a float tensor with pixels in [0,1], got dtype {x.dtype}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},), got {tuple(y.shape)}")


def _loss_and_input_grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example cross-entropy and its gradient w.r.t. ``x`` only."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="none")
    # Sum, not mean: each example's gradient is then independent of the batch size.
    (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015): ``clamp(x + eps*sign(grad), 0, 1)``."""
    require_grad_mode("fgsm")
    eps = check_eps(eps)
    _check_inputs(x, y)
    if eps == 0.0:
        return x.detach().clone()
    with eval_mode(model), torch.enable_grad():
        _, grad = _loss_and_input_grad(model, x, y)
    return (x.detach() + eps * grad.sign()).clamp(0.0, 1.0)


def _uniform_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform noise in [-1, 1] shaped like ``x``, drawn on the generator's device (default CPU)
    so that a seed gives the same random starts on every device."""
    g_device = generator.device if generator is not None else torch.device("cpu")
    noise = torch.rand(x.shape, generator=generator, device=g_device, dtype=x.dtype)
    return 2 * noise.to(x.device) - 1


def pgd(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Untargeted L-inf PGD on the cross-entropy loss (Madry et al. 2018).

    Args:
        eps: L-inf radius in pixel units, in [0, 1].
        steps: signed-gradient steps per restart.
        step_size: defaults to ``2.5 * eps / steps`` (Madry et al.'s rule of thumb).
        random_start: start each restart uniformly inside the eps-ball.
        restarts: independent runs; per example the first restart that fools the model
            is kept, otherwise the one with the highest final loss.
        generator: seeds the random starts (drawn on the generator's device, default CPU).

    Returns:
        Adversarial images, same shape/dtype/device as ``x``, within the eps-ball and [0,1].
    """
    require_grad_mode("pgd")
    eps = check_eps(eps)
    _check_inputs(x, y)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    if step_size is None:
        step_size = 2.5 * eps / steps
    if not (math.isfinite(step_size) and step_size >= 0):
        raise ValueError(f"step_size must be a finite number >= 0, got {step_size!r}")
    x = x.detach()
    if eps == 0.0:
        return x.clone()

    # Projection onto (eps-ball around x) intersected with the [0,1] box, per pixel.
    lo, hi = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    best = x.clone()
    best_loss = torch.full((x.shape[0],), -math.inf, device=x.device)
    fooled_once = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

    with eval_mode(model), torch.enable_grad():
        for _ in range(restarts):
            x_adv = x.clone()
            if random_start:
                x_adv = torch.min(torch.max(x + eps * _uniform_noise(x, generator), lo), hi)
            for _ in range(steps):
                _, grad = _loss_and_input_grad(model, x_adv, y)
                x_adv = torch.min(torch.max(x_adv + step_size * grad.sign(), lo), hi)
            with torch.no_grad():
                logits = model(x_adv)
                loss = F.cross_entropy(logits, y, reduction="none")
                fooled = logits.argmax(dim=1) != y
            # Keep the first fooling restart; until then, the worst-loss one.
            take = ~fooled_once & (fooled | (loss > best_loss))
            best[take] = x_adv[take]
            best_loss = torch.where(take, loss, best_loss)
            fooled_once |= fooled
    return best


def fgsm_random_start(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FGSM from a random start, as Wong et al. (2020) train with it; step 1.25 eps by default.

    The start is uniform in the eps-ball and is not clipped to [0, 1] before the gradient
    is taken; only the result is. Clipping the start (as ``pgd`` does) leaves MNIST's black
    background nothing but positive noise, and FGSM training on such starts learns no
    robustness at all (docs/robustness.md has the measurement).
    """
    require_grad_mode("fgsm_random_start")
    eps = check_eps(eps)
    _check_inputs(x, y)
    step_size = 1.25 * eps if step_size is None else step_size
    x = x.detach()
    start = x + eps * _uniform_noise(x, generator)
    with eval_mode(model), torch.enable_grad():
        _, grad = _loss_and_input_grad(model, start, y)
    delta = (start - x + step_size * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0.0, 1.0)


@torch.no_grad()
def _count_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    with eval_mode(model):
        return int((model(x).argmax(dim=1) == y).sum())


def accuracy_under_attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack_fn: AttackFn | None,
    batch_size: int = 256,
) -> float:
    """Accuracy on ``attack_fn(model, xb, yb)`` computed batch by batch.

    ``attack_fn`` takes ``(model, x, y)``; bind its parameters first, e.g.
    ``functools.partial(pgd, eps=0.1, steps=40)``. ``None`` gives clean accuracy.
    Batches stay on ``x``'s device, which must be the model's.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y disagree on the number of examples: {x.shape[0]} vs {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError("cannot compute accuracy on zero examples")
    correct = 0
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        if attack_fn is not None:
            xb = attack_fn(model, xb, yb)
        correct += _count_correct(model, xb, yb)
    return correct / x.shape[0]


# Each attack is the function of the same name (names.py lists them).
ATTACKS: dict[str, Callable[..., torch.Tensor]] = {name: globals()[name] for name in names.ATTACKS}


def get_attack(name: str) -> Callable[..., torch.Tensor]:
    """Look up an attack by name; ValueError lists the valid names."""
    try:
        return ATTACKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown attack {name!r}; valid names: {sorted(ATTACKS)}") from None
