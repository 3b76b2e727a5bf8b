"""The 15 MNIST-C corruptions, as batched tensor functions.

The corruptions of MNIST-C (Mu & Gilmer 2019, github.com/google-research/mnist-c,
``corruptions.py``) with the reference's default severities, i.e. the settings that
produced the published dataset. Every function has the signature
``fn(x, generator=None) -> x`` on float images ``(N,1,28,28)`` in ``[0,1]``; the output
keeps shape, dtype and device. Randomness comes only from ``generator`` (numbers are
drawn on the generator's device, CPU by default, then moved to ``x``'s device), so a
seeded generator reproduces the same corrupted batch. Each image gets its own draw.

Deliberate differences from the per-image numpy/PIL/ImageMagick reference: Gaussian
blurs use torchvision's kernel with reflect padding (scipy used "nearest"; MNIST borders
are black, so this barely matters), motion blur re-implements ImageMagick's one-sided
Gaussian kernel, outputs are not quantised to uint8, and the affine warps use
``grid_sample`` (bilinear, zero fill) in place of ``skimage.transform.warp``.

The continuous severity shifts of the robustness-vs-severity curves are in shifts.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch

from . import names
from ._utils import check_images
from .image_ops import blur, finish, gen_device, rand, randint, random_sign, warp

Corruption = Callable[..., torch.Tensor]


def _lines(c0: torch.Tensor, r0: torch.Tensor, c1: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """Batched ``line_from_points`` of the reference: (N,) endpoints -> (N,28,28) in [0,1].

    Intensity decays with vertical distance d to the line as log(1 - d/2.3) + 1, and the
    line only spans columns [floor(c0), ceil(c1)).
    """
    c0, r0, c1, r1 = (v.double().view(-1, 1, 1) for v in (c0, r0, c1, r1))
    grid = torch.arange(28, dtype=torch.float64, device=c0.device)
    cc, rr = grid.view(1, 1, 28), grid.view(1, 28, 1)
    vertical = c1 == c0
    slope = (r1 - r0) / torch.where(vertical, torch.ones_like(c1), c1 - c0)
    dist = (rr - (slope * (cc - c0) + r0)).abs().clamp(0, 2.3 - 1e-10)
    line = (torch.log(1 - dist / 2.3) + 1).clamp(0, 1)
    inside = (cc >= torch.floor(c0)) & (cc < torch.ceil(c1)) & ~vertical
    drawn: torch.Tensor = (line * inside).float()
    return drawn


def _plasma_fractal(
    n: int, generator: torch.Generator | None, mapsize: int = 256, wibbledecay: float = 3.0
) -> torch.Tensor:
    """Batched diamond-square height maps in [0,1], shape (n, mapsize, mapsize) (reference port)."""
    maps = torch.zeros(n, mapsize, mapsize, device=gen_device(generator))  # float32 is plenty
    wibble = 100.0

    def wibbled_mean(a: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        return a / 4 + wibble * (noise * 2 * wibble - wibble)  # wibble * U(-wibble, wibble)

    step = mapsize
    while step >= 2:
        h = step // 2
        corners = maps[:, 0::step, 0::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        maps[:, h::step, h::step] = wibbled_mean(square)
        dr, ul = maps[:, h::step, h::step], maps[:, 0::step, 0::step]
        maps[:, 0::step, h::step] = wibbled_mean(dr + dr.roll(1, dims=1) + ul + ul.roll(-1, dims=2))
        maps[:, h::step, 0::step] = wibbled_mean(dr + dr.roll(1, dims=2) + ul + ul.roll(-1, dims=1))
        step //= 2
        wibble /= wibbledecay
    maps = maps - maps.amin(dim=(1, 2), keepdim=True)
    return maps / maps.amax(dim=(1, 2), keepdim=True)


# ------------------------------------------------------------------------- corruptions


def shot_noise(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson noise: Poisson(3 x) / 3 (reference severity 5)."""
    check_images(x)
    lam = 3.0
    rate = (x.detach().float() * lam).to(gen_device(generator))
    return finish(torch.poisson(rate, generator=generator).to(x.device) / lam, x)


def impulse_noise(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Salt-and-pepper noise on 17% of pixels, half salt (skimage ``s&p``, severity 4)."""
    check_images(x)
    flipped = rand(x.shape, generator, x.device) < 0.17
    salt = (rand(x.shape, generator, x.device) < 0.5).to(x.dtype)
    return finish(torch.where(flipped, salt, x), x)


def glass_blur(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Blur, locally shuffle pixels, blur again (severity 1: sigma 0.7, delta 1, 2 passes).

    The reference called ``skimage gaussian(..., multichannel=True)`` on a 2-D image, which
    treats columns as channels and blurs along rows only; that vertical-only blur is kept.
    """
    check_images(x)
    sigma, delta, passes = 0.7, 1, 2
    n = x.shape[0]
    out = torch.floor(blur(x.float(), sigma, 0.0) * 255) / 255  # reference casts to uint8
    out = out.view(n, 28 * 28).clone()
    positions = range(28 - delta, delta, -1)
    k = len(positions)
    # Pre-draw every random number (coin, dx, dy per image and position), as the reference.
    coins = rand((passes, k, k, n), generator, x.device) < 0.5
    offsets = randint(-delta, delta, passes * k * k * 2 * n, generator, x.device).view(passes, k, k, 2, n)
    rows = torch.arange(n, device=x.device)
    for p in range(passes):
        for i, h in enumerate(positions):
            for j, w in enumerate(positions):
                dx, dy = offsets[p, i, j]
                src = torch.full_like(dx, h * 28 + w)
                dst = (h + dy) * 28 + (w + dx)
                a, b = out[rows, src], out[rows, dst]
                swap = coins[p, i, j]
                out[rows, src] = torch.where(swap, b, a)
                out[rows, dst] = torch.where(swap, a, b)
    return finish(blur(out.view(n, 1, 28, 28), sigma, 0.0), x)


def motion_blur(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ImageMagick ``motion_blur(radius=10, sigma=3, angle~U(-45,45))`` (severity 1).

    ImageMagick's kernel is one-sided: 2*radius+1 taps at integer offsets
    round(i*(cos a, sin a)) weighted by exp(-i^2 / 2 sigma^2), edge pixels repeated.
    """
    check_images(x)
    radius, sigma = 10, 3.0
    n = x.shape[0]
    angle = torch.deg2rad(rand(n, generator, x.device) * 90 - 45).double()
    taps = torch.arange(2 * radius + 1, dtype=torch.float64, device=x.device)
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    grid = torch.arange(28, device=x.device)
    rr, cc = grid.view(1, 28, 1), grid.view(1, 1, 28)
    flat = x.reshape(n, 28 * 28).double()
    out = torch.zeros_like(flat)
    for i, wgt in zip(taps, weights, strict=False):
        ox = torch.ceil(i * torch.cos(angle) - 0.5).long().view(n, 1, 1)
        oy = torch.ceil(i * torch.sin(angle) - 0.5).long().view(n, 1, 1)
        idx = (rr + oy).clamp(0, 27) * 28 + (cc + ox).clamp(0, 27)
        out += wgt * flat.gather(1, idx.view(n, -1))
    return finish(out.view_as(x), x)


Build = Callable[[int, torch.Generator | None, torch.device], tuple[torch.Tensor, torch.Tensor | None]]


def _affine_corruption(x: torch.Tensor, generator: torch.Generator | None, build: Build) -> torch.Tensor:
    check_images(x)
    matrix, shift = build(x.shape[0], generator, x.device)
    return finish(warp(x, matrix.float(), None if shift is None else shift.float()), x)


def shear(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Horizontal shear by +-0.4 rad about the centre (severity 2, random direction).

    Uses the skimage<0.19 ``AffineTransform(shear=s)`` matrix [[1, -sin s], [0, cos s]]
    that generated MNIST-C (newer skimage uses tan s).
    """

    def build(n: int, g: torch.Generator | None, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = 0.4 * random_sign(n, g, dev)
        zero = torch.zeros_like(s)
        return torch.stack(
            [torch.stack([torch.ones_like(s), -torch.sin(s)], -1), torch.stack([zero, torch.cos(s)], -1)], -2
        ), None

    return _affine_corruption(x, generator, build)


def scale(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shrink to 70% about the centre (severity 3; deterministic)."""

    def build(n: int, g: torch.Generator | None, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.eye(2, device=dev).expand(n, 2, 2) / 0.7, None

    return _affine_corruption(x, generator, build)


def rotate(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate by +-0.4 rad (about 23 degrees) about the centre (severity 2, random direction)."""

    def build(n: int, g: torch.Generator | None, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        a = 0.4 * random_sign(n, g, dev)
        cos, sin = torch.cos(a), torch.sin(a)
        return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2), None

    return _affine_corruption(x, generator, build)


def translate(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift by 3 pixels along both axes, each with a random sign (severity 3)."""

    def build(n: int, g: torch.Generator | None, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        shift = 3.0 * torch.stack([random_sign(n, g, dev), random_sign(n, g, dev)], -1)
        return torch.eye(2, device=dev).expand(n, 2, 2), shift

    return _affine_corruption(x, generator, build)


def brightness(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add 0.5 to HSV value (severity 5); for grey images that is ``clip(x + 0.5)``."""
    check_images(x)
    return finish(x + 0.5, x)


def stripe(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Invert the 7 leftmost and 7 rightmost columns (deterministic)."""
    check_images(x)
    out = x.clone()
    out[..., :7] = 1 - out[..., :7]
    out[..., 21:] = 1 - out[..., 21:]
    return finish(out, x)


def fog(x: torch.Tensor, generator: torch.Generator | None = None, chunk: int = 32) -> torch.Tensor:
    """Add a plasma-fractal haze, keeping the peak brightness (severity 5: 3.0, decay 1.4).

    A 256x256 fractal is drawn per image and its top-left 28x28 crop used, as in the
    reference; ``chunk`` bounds the memory (about 0.5 MB per image).
    """
    check_images(x)
    strength, decay = 3.0, 1.4
    haze = (
        torch.cat(
            [
                _plasma_fractal(min(chunk, x.shape[0] - s), generator, wibbledecay=decay)[:, :28, :28]
                for s in range(0, x.shape[0], chunk)
            ]
        )
        .to(x.device)
        .unsqueeze(1)
    )
    peak = x.double().amax(dim=(1, 2, 3), keepdim=True)
    return finish((x.double() + strength * haze) * peak / (peak + strength), x)


def spatter(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Grey mud blobs from thresholded smoothed noise (severity 4: 0.65, 0.3, 1, 0.65, 1.5)."""
    check_images(x)
    loc, std, sigma_liquid, threshold, sigma_mask = 0.65, 0.3, 1.0, 0.65, 1.5
    noise = torch.randn(x.shape, generator=generator, device=gen_device(generator)).to(x.device)
    liquid = blur(loc + std * noise, sigma_liquid)
    mask = blur((liquid > threshold).float(), sigma_mask)
    mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
    return finish(x * (1 - mask) + 63 / 255 * mask, x)


def dotted_line(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add a dashed line across the image between random rows on the left and right edges."""
    check_images(x)
    n = x.shape[0]
    r0, r1 = randint(0, 27, n, generator, x.device), randint(0, 27, n, generator, x.device)
    zeros = torch.zeros(n, device=x.device)
    line = _lines(zeros, r0, zeros + 27, r1)
    dashes = (torch.arange(28, device=x.device) // 2) % 2 == 1  # 2 px on, 2 px off, off first
    return finish(x + line.unsqueeze(1) * dashes, x)


def zigzag(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add a zigzag (teeth 2 px long, 2 px high) from column 2 to 25 at a random slope."""
    check_images(x)
    n = x.shape[0]
    a = b = 2.0
    c0, c1 = 2.0, 25.0
    r0 = randint(0, 27, n, generator, x.device).double()
    r1 = r0 + randint(-5, 5, n, generator, x.device).double()
    theta = torch.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / torch.cos(theta)  # length of the straight line, in [23, 23.54]
    # With d in that range the reference always makes 6 teeth plus a short last segment,
    # so every image has the same 8 endpoints (in the line's own frame).
    k = int((23.0 - a) // (2 * a)) + 1
    teeth_c = torch.tensor([0.0] + [(2 * i + 1) * a for i in range(k)], dtype=torch.float64, device=x.device)
    teeth_r = torch.tensor([0.0] + [(-1) ** i * b for i in range(k)], dtype=torch.float64, device=x.device)
    last_c = d
    last_r = teeth_r[-1] / (2 * (d - 2 * a * torch.floor(d / (2 * a))))
    cs = torch.cat([teeth_c.expand(n, -1), last_c.unsqueeze(1)], 1)
    rs = torch.cat([teeth_r.expand(n, -1), last_r.unsqueeze(1)], 1)
    cos, sin = torch.cos(theta).unsqueeze(1), torch.sin(theta).unsqueeze(1)
    cs, rs = cos * cs - sin * rs + c0, sin * cs + cos * rs + r0.unsqueeze(1)
    # Lines are non-negative, so clipping once equals the reference's clip after each segment.
    total = cast(
        torch.Tensor, sum(_lines(cs[:, i - 1], rs[:, i - 1], cs[:, i], rs[:, i]) for i in range(1, cs.shape[1]))
    )
    return finish(x + total.unsqueeze(1), x)


def canny_edges(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each image by its Canny edge map (``skimage.feature.canny``, sigma 1)."""
    check_images(x)
    try:
        from skimage.feature import canny
    except ImportError as err:  # only this corruption needs scikit-image
        raise ImportError("canny_edges needs scikit-image: pip install scikit-image") from err
    import numpy as np

    images = x.detach().to("cpu", torch.float64).numpy()[:, 0]
    edges = np.stack([canny(img) for img in images]).astype(np.float32)  # type: ignore[no-untyped-call]  # untyped
    return finish(torch.from_numpy(edges).unsqueeze(1), x)


# Each corruption is the function of the same name (names.py lists them, in MNIST-C's order).
CORRUPTIONS: dict[str, Corruption] = {name: globals()[name] for name in names.CORRUPTIONS}


def get_corruption(name: str) -> Corruption:
    """Look up an MNIST-C corruption by name; ValueError lists the valid names."""
    try:
        return CORRUPTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown corruption {name!r}; valid names: {list(CORRUPTIONS)}") from None
