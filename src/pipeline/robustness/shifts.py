"""Continuous distribution shifts for robustness-vs-severity curves.

Every shift is ``fn(x, severity, generator=None) -> x`` on float images ``(N,1,28,28)``
in ``[0,1]``; the output keeps shape, dtype and device. Their grids are
conf/robustness/*.yaml's ``severity`` (the first value is the clean one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision.transforms.v2.functional as TF

from . import names
from ._utils import check_images
from .image_ops import blur, finish, gen_device, random_sign, warp


def shift_rotate(x: torch.Tensor, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate every image counter-clockwise by ``severity`` degrees (bilinear, black fill)."""
    check_images(x)
    return finish(TF.rotate(x, float(severity), interpolation=TF.InterpolationMode.BILINEAR), x)


def shift_gaussian_noise(x: torch.Tensor, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add i.i.d. N(0, severity^2) pixel noise."""
    check_images(x)
    noise = torch.randn(x.shape, generator=generator, device=gen_device(generator), dtype=x.dtype)
    return finish(x + float(severity) * noise.to(x.device), x)


def shift_gaussian_blur(x: torch.Tensor, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian blur with standard deviation ``severity`` pixels (0 = unchanged)."""
    check_images(x)
    if severity < 0:
        raise ValueError(f"blur sigma must be >= 0, got {severity}")
    return x.clone() if severity == 0 else finish(blur(x, float(severity)), x)


def shift_contrast(x: torch.Tensor, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean by ``severity`` (1 = unchanged, 0 = flat)."""
    check_images(x)
    if severity < 0:
        raise ValueError(f"contrast factor must be >= 0, got {severity}")
    return finish(TF.adjust_contrast(x, float(severity)), x)


def shift_translate(x: torch.Tensor, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift by ``severity`` pixels along both axes with random signs per image (as MNIST-C)."""
    check_images(x)
    n = x.shape[0]
    shift = float(severity) * torch.stack(
        [random_sign(n, generator, x.device), random_sign(n, generator, x.device)], -1
    )
    return finish(warp(x, torch.eye(2, device=x.device).expand(n, 2, 2), shift), x)


# Each shift is the function shift_<name>. Units: rotate in degrees, gaussian_noise a sigma in pixel
# units, gaussian_blur a sigma in pixels, contrast a factor (1 = clean), translate pixels per axis.
# The grids the stage sweeps are conf/robustness/*.yaml's `severity` (the first value is the clean one).
SEVERITY_SHIFTS: dict[str, Callable[..., torch.Tensor]] = {
    name: globals()[f"shift_{name}"] for name in names.SEVERITY_SHIFTS
}


def get_severity_shift(name: str) -> Callable[..., torch.Tensor]:
    """Look up a severity shift by name; ValueError lists the valid names."""
    try:
        return SEVERITY_SHIFTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown severity shift {name!r}; valid names: {list(SEVERITY_SHIFTS)}") from None
