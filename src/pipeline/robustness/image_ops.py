"""Batched image operations the corruptions and severity shifts share.

Float images ``(N,1,28,28)`` in ``[0,1]``. Random numbers are drawn on the generator's
device (CPU by default), then moved to the images' device, so a seeded generator
reproduces the same batch wherever the images live.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

CENTER = 13.5  # pixel-centre coordinate of the middle of a 28x28 image


def gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def rand(shape: int | Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=gen_device(generator)).to(device)


def randint(low: int, high: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.randint(low, high, (n,), generator=generator, device=gen_device(generator)).to(device)


def random_sign(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return randint(0, 2, n, generator, device).float() * 2 - 1


def blur(x: torch.Tensor, sigma_y: float, sigma_x: float | None = None) -> torch.Tensor:
    """Gaussian blur with scipy/skimage's kernel extent (truncate=4 sigma); sigma 0 = no blur."""
    sigma_x = sigma_y if sigma_x is None else sigma_x
    ks = [2 * int(4 * s + 0.5) + 1 if s > 0 else 1 for s in (sigma_x, sigma_y)]
    blurred: torch.Tensor = TF.gaussian_blur(x, kernel_size=ks, sigma=[max(sigma_x, 1e-6), max(sigma_y, 1e-6)])
    return blurred


def warp(x: torch.Tensor, matrix: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """out(p) = x(matrix @ (p - c) + c + shift): skimage's ``warp(x, inverse_map=aff)``.

    ``matrix`` is (N,2,2) and ``shift`` (N,2) in pixels, both in (col, row) order. With
    align_corners=True, normalised coordinates are (pixel - 13.5) / 13.5, so an affine map
    that keeps the centre fixed has zero translation there.
    """
    n = x.shape[0]
    shift = torch.zeros(n, 2, device=x.device) if shift is None else shift
    theta = torch.cat([matrix, (shift / CENTER).unsqueeze(-1)], dim=-1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def finish(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return out.clamp(0.0, 1.0).to(dtype=x.dtype, device=x.device)
