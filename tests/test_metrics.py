import torch

from pipeline.nn.metrics import confusion_matrix, precision_recall


def test_confusion_rows_are_true_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 2, 0])
    cm = confusion_matrix(preds, labels, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    precision, recall = precision_recall(cm)
    assert torch.allclose(precision, torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64))
    assert torch.allclose(recall, torch.tensor([0.5, 1.0, 2 / 3], dtype=torch.float64))
