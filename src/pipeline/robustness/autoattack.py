"""Thin wrapper around AutoAttack (Croce & Hein 2020) from the ``pyautoattack`` package.

``pyautoattack`` (PyPI) is a packaged fork of github.com/fra31/auto-attack whose import
name is ``pyautoattack``; it is imported lazily so that the rest of the robustness code
works without it. Its ``device`` default is CPU, so the device is always passed here.
"""

from __future__ import annotations

import torch

from ._utils import eval_mode, require_grad_mode
from .attacks import check_eps


def autoattack_accuracy(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    n: int | None = None,
    device: torch.device | str = "cpu",
    version: str = "standard",
    seed: int = 0,
    attacks: list[str] | None = None,
    batch_size: int = 250,
) -> float:
    """Robust accuracy of ``model`` under L-inf AutoAttack on the first ``n`` examples.

    Args:
        eps: L-inf radius in pixel units, in [0, 1].
        n: number of leading examples to evaluate (all when None); the full standard
            attack is expensive (minutes per 1k MNIST images on a GPU).
        device: where the attack runs; the model must already live there.
        version: "standard", "plus", "rand", or "custom" together with ``attacks``
            (names among "apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t").
        seed: AutoAttack seed (it re-seeds torch's global RNG inside its attacks).

    Returns the fraction of the ``n`` examples still classified correctly.
    """
    require_grad_mode("autoattack_accuracy")
    eps = check_eps(eps)
    try:
        from pyautoattack import AutoAttack
    except ImportError as err:
        raise ImportError("autoattack_accuracy needs the AutoAttack package: pip install pyautoattack") from err
    if version == "custom" and not attacks:
        raise ValueError("version='custom' needs a list of attacks, e.g. ['apgd-ce', 'apgd-t']")
    if version != "custom" and attacks is not None:
        raise ValueError(f"attacks is only used with version='custom', got version={version!r}")
    n = x.shape[0] if n is None else int(n)
    if not 0 < n <= x.shape[0]:
        raise ValueError(f"n must be in [1, {x.shape[0]}], got {n}")
    x, y = x[:n].detach().to(device), y[:n].detach().to(device)

    adversary = AutoAttack(model, eps=eps, norm="Linf", version=version, attacks=attacks, device=device, seed=seed)
    with eval_mode(model), torch.enable_grad():
        _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    # y_adv holds the final prediction per example (clean prediction if never fooled).
    return float((y_adv.to(y.device) == y).float().mean())
