"""Expected calibration error and reliability bins."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.nn.calibration import expected_calibration_error, reliability_bins


def _two_class(confidence: torch.Tensor, correct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities for 2 classes with the given top confidence; label chosen to be (in)correct."""
    probs = torch.stack([confidence, 1 - confidence], dim=1)
    labels = torch.where(
        correct, torch.zeros_like(confidence, dtype=torch.long), torch.ones_like(confidence, dtype=torch.long)
    )
    return probs, labels


def _reference_ece(probs, labels, n_bins):
    """Straight loop over bins, as in Guo et al.'s reference code."""
    conf, pred = probs.max(1)
    acc = (pred == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.double().mean() * (acc[in_bin].mean() - conf[in_bin].double().mean()).abs()
    return float(ece)


def test_perfectly_calibrated_is_zero():
    # In each bin, confidence c on 100 examples of which exactly 100*c are right.
    confs, correct = [], []
    for c in (0.55, 0.65, 0.75, 0.85, 0.95):
        k = round(100 * c)
        confs += [c] * 100
        correct += [True] * k + [False] * (100 - k)
    probs, labels = _two_class(torch.tensor(confs, dtype=torch.float64), torch.tensor(correct))
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.0, abs=1e-9)


def test_confident_and_wrong_is_one_and_confident_right_is_zero():
    probs = torch.eye(10)[torch.arange(50) % 10]
    assert expected_calibration_error(probs, (torch.arange(50) + 1) % 10) == pytest.approx(1.0)
    assert expected_calibration_error(probs, torch.arange(50) % 10) == pytest.approx(0.0)


def test_known_value():
    # One bin: confidence 0.8, accuracy 0.5 -> ECE 0.3; plus a perfect bin of equal size.
    probs, labels = _two_class(
        torch.tensor([0.8] * 4 + [1.0] * 4, dtype=torch.float64),
        torch.tensor([True, True, False, False] + [True] * 4),
    )
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.15)


def test_matches_reference_loop_on_random_softmax():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(2000, 10, generator=g), dim=1)
    labels = torch.randint(0, 10, (2000,), generator=g)
    for n_bins in (1, 5, 15, 20):
        assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(
            _reference_ece(probs, labels, n_bins), abs=1e-9
        )


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(1, 200), st.integers(0, 2**16), st.integers(1, 30))
def test_ece_in_unit_interval(n, seed, n_bins):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(n, 10, generator=g) * 4, dim=1)
    labels = torch.randint(0, 10, (n,), generator=g)
    assert 0.0 <= expected_calibration_error(probs, labels, n_bins) <= 1.0


def test_reliability_bins():
    probs, labels = _two_class(
        torch.tensor([0.5, 0.6, 0.62, 0.95, 1.0], dtype=torch.float64),
        torch.tensor([True, False, True, True, False]),
    )
    bins = reliability_bins(probs, labels, n_bins=4)  # edges 0, .25, .5, .75, 1
    assert torch.equal(bins["count"], torch.tensor([0.0, 1.0, 2.0, 2.0], dtype=torch.float64))
    assert torch.isnan(bins["confidence"][0]) and torch.isnan(bins["accuracy"][0])
    assert bins["confidence"][1] == pytest.approx(0.5)  # 0.5 falls in (0.25, 0.5]
    assert bins["confidence"][2] == pytest.approx(0.61) and bins["accuracy"][2] == pytest.approx(0.5)
    assert bins["confidence"][3] == pytest.approx(0.975) and bins["accuracy"][3] == pytest.approx(0.5)
    torch.testing.assert_close(bins["lower"], torch.tensor([0, 0.25, 0.5, 0.75], dtype=torch.float64))
    torch.testing.assert_close(bins["upper"], torch.tensor([0.25, 0.5, 0.75, 1], dtype=torch.float64))


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        expected_calibration_error(torch.rand(10), torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        expected_calibration_error(torch.rand(10, 3), torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="softmax"):
        expected_calibration_error(torch.randn(10, 3) * 5, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins(torch.full((4, 2), 0.5), torch.zeros(4, dtype=torch.long), n_bins=0)
