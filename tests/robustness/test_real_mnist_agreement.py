"""Our PGD against ART's on the real MNIST test set and the seed MLP architecture."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.data.mnist import load_split
from pipeline.nn.models import MLP
from pipeline.robustness.attacks import accuracy_under_attack, pgd


@pytest.fixture(scope="module")
def seed_mlp_and_test_images(mnist_root):
    torch.manual_seed(0)
    images, labels = load_split(mnist_root, "train")
    x_train, y_train = images[:20000].unsqueeze(1).float() / 255, labels[:20000]
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _epoch in range(2):
        for i in range(0, len(y_train), 200):
            loss = F.cross_entropy(model(x_train[i : i + 200]), y_train[i : i + 200])
            opt.zero_grad()
            loss.backward()
            opt.step()
    test_images, test_labels = load_split(mnist_root, "test")
    return model.eval(), test_images[:1000].unsqueeze(1).float() / 255, test_labels[:1000]


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
@pytest.mark.slow
def test_pgd_robust_accuracy_matches_art_within_one_point(seed_mlp_and_test_images, eps):
    pytest.importorskip("art")
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model, x, y = seed_mlp_and_test_images
    assert accuracy_under_attack(model, x, y, None) > 0.9  # a real, trained model
    steps = 10
    ours = accuracy_under_attack(
        model, x, y, lambda m, xb, yb: pgd(m, xb, yb, eps, steps=steps, random_start=False), batch_size=500
    )
    classifier = PyTorchClassifier(
        model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0)
    )
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=2.5 * eps / steps,
        max_iter=steps,
        num_random_init=0,
        batch_size=500,
        verbose=False,
    )
    theirs = accuracy_under_attack(model, torch.from_numpy(attack.generate(x.numpy(), y=y.numpy())), y, None)
    assert abs(ours - theirs) <= 0.01, (eps, ours, theirs)
