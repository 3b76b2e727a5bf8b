import torch

from pipeline.metrics import confusion_matrix, expected_calibration_error, precision_recall, reliability_bins


def test_confusion_rows_are_true_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 2, 0])
    cm = confusion_matrix(preds, labels, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    precision, recall = precision_recall(cm)
    assert torch.allclose(precision, torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64))
    assert torch.allclose(recall, torch.tensor([0.5, 1.0, 2 / 3], dtype=torch.float64))


def test_ece_zero_when_confidence_matches_accuracy():
    # 10 predictions at confidence 0.8, 8 of them right
    probs = torch.full((10, 2), 0.2)
    probs[:, 0] = 0.8
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert abs(expected_calibration_error(probs, labels)) < 1e-6


def test_ece_near_one_when_confidently_wrong():
    probs = torch.tensor([[0.999, 0.001]] * 20)
    labels = torch.ones(20, dtype=torch.long)
    assert expected_calibration_error(probs, labels) > 0.99


def test_reliability_bins_count_everything():
    probs = torch.softmax(torch.randn(500, 10, generator=torch.Generator().manual_seed(0)), 1)
    labels = torch.randint(0, 10, (500,), generator=torch.Generator().manual_seed(1))
    rows = reliability_bins(probs, labels, n_bins=10)
    assert len(rows) == 10 and sum(r["count"] for r in rows) == 500
