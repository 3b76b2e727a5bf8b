"""MNIST-C corruptions and severity shifts: contracts and agreement with the reference ops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pipeline.config.settings import severity_grids
from pipeline.robustness.corruptions import CORRUPTIONS, get_corruption
from pipeline.robustness.shifts import SEVERITY_SHIFTS, get_severity_shift

SEVERITY_GRIDS = severity_grids()

MNIST_C = [
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
]
DETERMINISTIC = {"scale", "brightness", "stripe", "canny_edges"}


@pytest.fixture(scope="module")
def batch(digit_like_data) -> torch.Tensor:
    """Ring digits plus synthetic digit-like images, (12,1,28,28) float32 in [0,1]."""
    r, c = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    d = ((r - 13.5) / 8) ** 2 + ((c - 13.5) / 5.5) ** 2
    ring = torch.exp(-((d.sqrt() - 1.0) ** 2) / 0.02).reshape(1, 1, 28, 28)
    x, _ = digit_like_data(8, torch.Generator().manual_seed(5))
    return torch.cat([ring.expand(4, -1, -1, -1), x]).contiguous()


def test_registry_has_the_15_mnist_c_corruptions():
    assert list(CORRUPTIONS) == MNIST_C


@pytest.mark.parametrize("name", MNIST_C)
def test_corruption_contract(batch, name):
    fn = get_corruption(name)
    out = fn(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == batch.dtype and out.device == batch.device
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()
    # Not the identity: every image changes noticeably.
    assert ((out - batch).abs().flatten(1).amax(dim=1) > 0.05).all()
    # Same seed, same output; the input is not modified in place.
    before = batch.clone()
    assert torch.equal(fn(batch, torch.Generator().manual_seed(0)), out)
    assert torch.equal(batch, before)
    if name not in DETERMINISTIC:
        assert not torch.equal(fn(batch, torch.Generator().manual_seed(1)), out)


@pytest.mark.parametrize("name", ["rotate", "shear", "translate", "motion_blur", "dotted_line"])
def test_each_image_gets_its_own_draw(batch, name):
    same = batch[:1].expand(32, -1, -1, -1).contiguous()
    out = get_corruption(name)(same, torch.Generator().manual_seed(0))
    distinct = torch.unique(out.flatten(1), dim=0)
    assert len(distinct) > 1
    if name == "rotate":  # a random sign per image, so exactly two outcomes
        assert len(distinct) == 2


def test_unknown_corruption_lists_choices():
    with pytest.raises(ValueError, match=r"valid names.*shot_noise.*canny_edges"):
        get_corruption("snow")
    with pytest.raises(ValueError, match=r"valid names.*rotate"):
        get_severity_shift("snow")


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N,1,28,28\)"):
        get_corruption("rotate")(torch.rand(2, 28, 28))


# ---- agreement with the reference implementation's library calls (scikit-image) ----


def _skimage_centered_warp(img: np.ndarray, **params) -> np.ndarray:
    """The MNIST-C reference: AffineTransform about the centre (13.5, 13.5), then warp."""
    from skimage import transform

    aff = transform.AffineTransform(**params)
    (a1, a2), (b1, b2) = aff.params[0, :2], aff.params[1, :2]
    aff = transform.AffineTransform(**params, translation=[13.5 * (1 - a1 - a2), 13.5 * (1 - b1 - b2)])
    return np.clip(transform.warp(img, inverse_map=aff), 0, 1)


@pytest.mark.parametrize(
    "name,candidates",
    [
        ("scale", [dict(scale=(1 / 0.7, 1 / 0.7))]),
        ("rotate", [dict(rotation=0.4), dict(rotation=-0.4)]),
        ("translate", [dict(translation=(3 * sx, 3 * sy)) for sx in (1, -1) for sy in (1, -1)]),
    ],
)
def test_affine_corruptions_match_skimage(batch, name, candidates):
    pytest.importorskip("skimage")
    from skimage import transform

    out = get_corruption(name)(batch, torch.Generator().manual_seed(0))[:, 0].numpy()
    for img, got in zip(batch[:, 0].double().numpy(), out, strict=False):
        if name == "translate":  # the reference warps translations without re-centring
            refs = [np.clip(transform.warp(img, inverse_map=transform.AffineTransform(**p)), 0, 1) for p in candidates]
        else:
            refs = [_skimage_centered_warp(img, **p) for p in candidates]
        assert min(np.abs(ref - got).max() for ref in refs) < 1e-5


def test_brightness_matches_hsv_reference(batch):
    skimage = pytest.importorskip("skimage")
    ref = []
    for img in batch[:, 0].double().numpy():
        hsv = skimage.color.rgb2hsv(skimage.color.gray2rgb(img))
        hsv[:, :, 2] = np.clip(hsv[:, :, 2] + 0.5, 0, 1)
        ref.append(np.clip(skimage.color.rgb2gray(skimage.color.hsv2rgb(hsv)), 0, 1))
    got = get_corruption("brightness")(batch)[:, 0].double().numpy()
    np.testing.assert_allclose(got, np.stack(ref), atol=1e-6)


# ---- severity sweeps ----


def test_severity_registry():
    assert set(SEVERITY_SHIFTS) == {"rotate", "gaussian_noise", "gaussian_blur", "contrast", "translate"}
    assert set(SEVERITY_GRIDS) == set(SEVERITY_SHIFTS)


@pytest.mark.parametrize("name", list(SEVERITY_SHIFTS))
def test_severity_shift_contract(batch, name):
    fn = get_severity_shift(name)
    grid = SEVERITY_GRIDS[name]
    # The first grid value is the clean setting.
    torch.testing.assert_close(fn(batch, grid[0], torch.Generator().manual_seed(0)), batch, atol=1e-5, rtol=0)
    changes = []
    for severity in grid[1:]:
        out = fn(batch, severity, torch.Generator().manual_seed(0))
        assert out.shape == batch.shape and out.dtype == batch.dtype
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(out, fn(batch, severity, torch.Generator().manual_seed(0)))
        changes.append((out - batch).abs().mean().item())
    assert min(changes) > 0
    # Harsher settings move the images further (monotone up to small wobble).
    assert changes[-1] == pytest.approx(max(changes), rel=0.05)
    assert all(b >= a * 0.95 for a, b in itertools.pairwise(changes))
