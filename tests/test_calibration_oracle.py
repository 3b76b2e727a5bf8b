"""The project's ECE (pipeline.nn.calibration) against an independent implementation:
torchmetrics' MulticlassCalibrationError (l1 norm, equal-width bins), on random predictions and on
the predictions of an MLP trained on real MNIST.

Where the two bin differently, exactly (torchmetrics 1.9, `_binning_bucketize`):

1. Bin edges. Ours: bin i is (lo, hi] (Guo et al.'s reference code); torchmetrics: [lo, hi)
   (`bucketize(c, edges, right=True) - 1`). Only a confidence exactly on an interior edge moves:
   one bin down in ours, one bin up in torchmetrics.
2. A confidence of exactly 1.0. Ours: in the last bin (.., 1]. torchmetrics keeps n_bins + 1
   accumulators (one per edge) and 1.0 lands in the extra one, its own bin. float32 softmax gives
   1.0 to a prediction whose runner-up logit is about 17 or more below the top one (a handful of
   the 10,000 test images for the MLP below): the two ECEs differ whenever that group's gap
   (its accuracy - 1) and the rest of the top bin's gap have opposite signs.
3. Precision. torchmetrics casts confidences to float32 and builds float32 edges; ours works in
   float64. Edges then sit at float32(k/n) against float64(k/n): with no float32 value strictly
   between the two, only a confidence equal to a float32 edge is affected, and that is case 1.
   It also sums each bin in float32: on the 10,000 test predictions below that moves its ECE by up
   to 3e-6 (ours 0.0071281, torchmetrics 0.0071253 at 10 bins).

Everything else (empty bins skipped, count-weighted mean of |accuracy - confidence|) is the same:
off the edges and below 1.0 the two agree to float32 rounding.
"""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from pipeline.nn.calibration import expected_calibration_error

TOL = 2e-6  # torchmetrics sums each bin in float32: over 5,000 random predictions
# Over the ~8,000 test predictions of the trained MLP in its top bin, that float32 sum is off by up to
# 3e-6 (measured; the float64 re-computation below agrees with ours to 1e-12).
TOL_TRAINED = 1e-5


def oracle(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    metric = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=n_bins, norm="l1")
    return float(metric(probs, labels))


def _random_predictions(seed: int, n: int = 5000, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(n, 1, generator=g) * 3  # from near-uniform to confident (never sure) predictions
    probs = (torch.randn(n, classes, generator=g) * scale).softmax(1)
    labels = torch.randint(0, classes, (n,), generator=g)
    return probs, labels


def _float32_edges(n_bins: int) -> torch.Tensor:
    return torch.linspace(0, 1, n_bins + 1, dtype=torch.float32)  # as torchmetrics builds them


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15, 20, 100])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_agrees_with_torchmetrics_on_random_predictions(seed, n_bins):
    probs, labels = _random_predictions(seed)
    confidence = probs.max(1).values
    assert not torch.isin(confidence, _float32_edges(n_bins)).any()  # off the edges: cases 1-3 absent
    ours = expected_calibration_error(probs, labels, n_bins)
    assert 0.0 < ours < 1.0
    assert ours == pytest.approx(oracle(probs, labels, n_bins), abs=TOL)


def _top(confidence: list[float], correct: list[bool], classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities whose top class (0) has exactly `confidence`, the rest shared by the others;
    the label is 0 where `correct`, else 1."""
    c = torch.tensor(confidence, dtype=torch.float32)[:, None]
    probs = torch.cat([c, ((1 - c) / (classes - 1)).expand(-1, classes - 1)], dim=1)
    labels = torch.tensor([0 if ok else 1 for ok in correct])
    return probs, labels


def test_a_confidence_on_an_interior_edge_goes_down_in_ours_and_up_in_torchmetrics():
    # 4 bins; 0.5 is an edge in float32 and float64 alike. Ours: 0.5 in (0.25, 0.5] with 0.3;
    # torchmetrics: 0.5 in [0.5, 0.75) with 0.7.
    probs, labels = _top([0.3, 0.5, 0.7], [False, True, False])
    ours = expected_calibration_error(probs, labels, 4)
    # ours: bin (0.25, 0.5] = {0.3 wrong, 0.5 right}: |0.5 - 0.4| * 2/3; bin (0.5, 0.75] = {0.7 wrong}: 0.7/3
    assert ours == pytest.approx((0.1 * 2 + 0.7) / 3, abs=1e-6)
    # torchmetrics: [0.25, 0.5) = {0.3 wrong}: 0.3/3; [0.5, 0.75) = {0.5 right, 0.7 wrong}: |0.5 - 0.6| * 2/3
    assert oracle(probs, labels, 4) == pytest.approx((0.3 + 0.1 * 2) / 3, abs=1e-6)
    # Moved off the edge by one float32 step up, the example is in the upper bin for both.
    above = torch.nextafter(torch.tensor(0.5), torch.tensor(1.0)).item()
    probs, labels = _top([0.3, above, 0.7], [False, True, False])
    assert expected_calibration_error(probs, labels, 4) == pytest.approx(oracle(probs, labels, 4), abs=1e-6)


def test_a_confidence_of_one_is_its_own_bin_in_torchmetrics():
    # 10 bins. A sure and wrong prediction beside a 0.95 right one: ours averages them in (0.9, 1]
    # (|0.5 - 0.975|), torchmetrics keeps 1.0 apart (|0 - 1| and |1 - 0.95|, each weighted 1/2).
    probs, labels = _top([1.0, 0.95], [False, True])
    assert expected_calibration_error(probs, labels, 10) == pytest.approx(0.475, abs=1e-6)
    assert oracle(probs, labels, 10) == pytest.approx(0.525, abs=1e-6)
    # Gaps of the same sign add up the same either way.
    probs, labels = _top([1.0, 0.95], [False, False])
    assert expected_calibration_error(probs, labels, 10) == pytest.approx(oracle(probs, labels, 10), abs=1e-6)


def torchmetrics_binning_in_float64(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    """torchmetrics' binning (cases 1 and 2: [lo, hi) on its float32 edges, one more bin for 1.0),
    summed in float64: what torchmetrics computes, without its float32 rounding."""
    confidence, prediction = probs.max(1)
    c, correct = confidence.double(), (prediction == labels).double()
    index = torch.bucketize(c, _float32_edges(n_bins).double(), right=True) - 1
    gaps = [(correct[index == k].sum() - c[index == k].sum()).abs() for k in range(n_bins + 1)]
    return float(sum(gaps)) / len(c)


def split_at_one(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    """Our ECE with the confidences of exactly 1.0 as a bin of their own: torchmetrics' binning
    (case 2), from our own function and the sure group's |accuracy - 1|."""
    confidence, prediction = probs.max(1)
    sure = confidence == 1.0
    rest = expected_calibration_error(probs[~sure], labels[~sure], n_bins) if (~sure).any() else 0.0
    sure_gap = float((prediction[sure] == labels[sure]).double().mean() - 1.0) if sure.any() else 0.0
    n, n_sure = len(labels), int(sure.sum())
    return ((n - n_sure) * rest + n_sure * abs(sure_gap)) / n


@pytest.fixture(scope="module")
def mnist_predictions(mnist_root):
    """Test-set probabilities (float32 softmax, as the evaluate stage computes them) of the seed MLP
    after 3 epochs of plain Adam on 20,000 real training images."""
    from pipeline.data.mnist import load_split
    from pipeline.nn.images import to_model_input
    from pipeline.nn.models import MLP

    torch.manual_seed(0)
    images, labels = load_split(mnist_root, "train")
    x, y = to_model_input(images[:20000]), labels[:20000]
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        for i in torch.randperm(len(y)).split(100):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            optimizer.step()
    test_images, test_labels = load_split(mnist_root, "test")
    with torch.no_grad():
        probs = model.eval()(to_model_input(test_images)).softmax(1)
    return probs, test_labels


@pytest.mark.parametrize("n_bins", [10, 15, 20])
def test_agrees_with_torchmetrics_on_a_trained_mlp(mnist_predictions, n_bins):
    probs, labels = mnist_predictions
    accuracy = float((probs.argmax(1) == labels).double().mean())
    assert accuracy > 0.95  # a trained model: confident, mostly right
    confidence = probs.max(1).values
    interior = _float32_edges(n_bins)[1:-1]
    assert not torch.isin(confidence, interior).any()  # case 1 absent: no confidence on an interior edge
    ours = expected_calibration_error(probs, labels, n_bins)
    theirs = oracle(probs, labels, n_bins)
    assert 0.0 < ours < 0.05
    # With the sure predictions in a bin of their own, ours is torchmetrics' number: exactly in
    # float64, and to torchmetrics' float32 rounding against the library itself.
    split = split_at_one(probs, labels, n_bins)
    assert split == pytest.approx(torchmetrics_binning_in_float64(probs, labels, n_bins), abs=1e-12)
    assert split == pytest.approx(theirs, abs=TOL_TRAINED)
    # Below 1.0 the binning is the same: ours and torchmetrics agree on the rest.
    below = confidence < 1.0
    assert expected_calibration_error(probs[below], labels[below], n_bins) == pytest.approx(
        oracle(probs[below], labels[below], n_bins), abs=TOL_TRAINED
    )
