"""Shared fixtures: a small seeded model trained on synthetic digit-like data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


class SmallNet(nn.Module):
    """Tiny MLP with normalisation inside and Dropout, so eval/train mode matters."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(0.13))
        self.register_buffer("std", torch.tensor(0.31))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def digit_like(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten smooth random stroke prototypes inside the central 20x20, plus jitter and noise."""
    protos = torch.rand(10, 1, 7, 7, generator=torch.Generator().manual_seed(123))
    protos = F.interpolate((protos > 0.6).float(), size=(20, 20), mode="bilinear", align_corners=False)
    protos = F.pad(protos, (4, 4, 4, 4))
    y = torch.randint(0, 10, (n,), generator=generator)
    gain = 0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)
    x = protos[y] * gain + 0.25 * torch.randn(n, 1, 28, 28, generator=generator)
    return x.clamp(0, 1), y


def train_small_net(seed: int = 0, steps: int = 300) -> SmallNet:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = SmallNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        x, y = digit_like(64, g)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="session")
def small_model() -> SmallNet:
    return train_small_net()


@pytest.fixture(scope="session")
def digit_like_data():
    """The synthetic data generator itself, for tests that need more samples."""
    return digit_like


@pytest.fixture(scope="session")
def eval_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return digit_like(256, torch.Generator().manual_seed(1))


@pytest.fixture()
def digit() -> torch.Tensor:
    """One clean digit-like image (a ring, like a '0'), shape (1,1,28,28)."""
    r, c = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    d = ((r - 13.5) / 8) ** 2 + ((c - 13.5) / 5.5) ** 2
    ring = torch.exp(-((d.sqrt() - 1.0) ** 2) / 0.02)
    return ring.clamp(0, 1).reshape(1, 1, 28, 28)
