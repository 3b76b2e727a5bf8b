"""Plain nn.Modules: the MLP family (seed network, linear stack) and a small CNN.

Every model takes float images (N, 1, 28, 28) with pixels in [0, 1] and returns
logits (N, 10). Normalisation is the model's first layer, so attacks and
corruptions work in pixel space. Softmax is left to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
# Weight initialisations of the MLP's linear layers (biases start at zero with all but "default"):
# PyTorch's own (uniform within 1 / sqrt(fan_in): a sixth of He's variance), N(0, 0.01^2) as before
# Glorot & Bengio 2010, Glorot & Bengio's normalised uniform, and He et al. 2015's N(0, 2 / fan_in).
INITS = ("default", "normal", "glorot", "he")
NORMAL_INIT_STD = 0.01


class Normalize(nn.Module):
    """(x - mean) / std with fixed buffers: no parameters, travels with the model."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: float = MNIST_MEAN, std: float = MNIST_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    """784 -> hidden... -> 10 with one activation between layers.

    hidden=(128, 64), activation="relu" is the seed network (109,386 parameters);
    activation="identity" makes the whole stack one linear map in disguise. batch_norm puts a
    BatchNorm1d between each hidden layer's product and its activation (Ioffe & Szegedy 2015);
    init chooses the linear layers' starting weights (INITS).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        in_features: int = 784,
        num_classes: int = 10,
        batch_norm: bool = False,
        init: str = "default",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        layers: list[nn.Module] = [Normalize(), nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        initialise(self.linear_layers(), init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]


def initialise(layers: Sequence[nn.Linear], init: str) -> None:
    """Draw the layers' weights as `init` says (from torch's global generator: seeded runs repeat)."""
    if init == "default":
        return
    for layer in layers:
        if init == "normal":
            nn.init.normal_(layer.weight, 0.0, NORMAL_INIT_STD)
        elif init == "glorot":
            nn.init.xavier_uniform_(layer.weight)
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)


class CNN(nn.Module):
    """Conv(3x3)-BN-ReLU-MaxPool blocks, then a small classifier head."""

    def __init__(
        self, channels: Sequence[int] = (32, 64, 128), hidden: int = 256, dropout: float = 0.25, num_classes: int = 10
    ):
        super().__init__()
        layers: list[nn.Module] = [Normalize()]
        c_in, size = 1, 28
        for c_out in channels:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, size = c_out, size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


class SmallConv(nn.Module):
    """Two strided 4x4 convolutions and one hidden layer (Wong et al. 2020's MNIST net).

    No batch norm and no pooling: a fraction of the CNN's cost per step, which is
    what makes multi-step adversarial training affordable on a CPU.
    """

    def __init__(self, channels: Sequence[int] = (16, 32), hidden: int = 100, num_classes: int = 10):
        super().__init__()
        c1, c2 = channels
        self.net = nn.Sequential(
            Normalize(),
            nn.Conv2d(1, c1, 4, stride=2, padding=1),
            nn.ReLU(),  # 28 -> 14
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            nn.ReLU(),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
