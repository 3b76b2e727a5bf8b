"""Property-based checks: for any images and settings, outputs stay valid images and attacks stay in the ball."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config.settings import severity_grids
from pipeline.robustness.attacks import fgsm, pgd
from pipeline.robustness.corruptions import CORRUPTIONS
from pipeline.robustness.shifts import SEVERITY_SHIFTS

SEVERITY_GRIDS = severity_grids()

images = st.builds(
    lambda n, seed, sparsity: (
        torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
        * (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 1)) > sparsity)
    ),
    n=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    sparsity=st.floats(0.0, 0.95),
)
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(out, x):
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
@SETTINGS
@given(x=images, seed=st.integers(0, 2**31 - 1))
def test_every_corruption_returns_valid_images(name, x, seed):
    _valid(CORRUPTIONS[name](x, torch.Generator().manual_seed(seed)), x)


@pytest.mark.parametrize("name", sorted(SEVERITY_SHIFTS))
@SETTINGS
@given(x=images, data=st.data())
def test_every_severity_shift_returns_valid_images(name, x, data):
    grid = SEVERITY_GRIDS[name]
    severity = data.draw(st.floats(min(grid), max(grid)))
    _valid(SEVERITY_SHIFTS[name](x, severity, torch.Generator().manual_seed(0)), x)


@SETTINGS
@given(x=images, eps=st.floats(0.0, 1.0), steps=st.integers(1, 3))
def test_attacks_stay_within_eps_and_the_pixel_range(small_model, x, eps, steps):
    y = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(0))
    for adv in (fgsm(small_model, x, y, eps), pgd(small_model, x, y, eps, steps=steps)):
        _valid(adv, x)
        assert (adv - x).abs().max() <= eps + 1e-6
