"""Two MNIST digits side by side, labelled with their sum: do networks combine what they learned?

Following Bloice, Roth & Holzinger (J. Intell. Inf. Syst. 2021), a network trains on images of 90
of the 100 ordered digit pairs and is tested on the 10 it never saw. The held-out pairs are
(i, p(i)) for a random permutation p: every digit still appears in each position in training, and
p(0) != 0, p(9) != 9 keeps sums 0 and 18 (one pair each) among the training labels, so a miss on a
held-out pair is a failure to combine, not a label never seen.

Two models see the same images and the same sum labels:
- ``EndToEnd``: an MLP from the 28 x 56 image to the 19 sums;
- ``Factored``: one digit MLP applied to each half (two heads with shared weights) feeding a fixed
  adder, P(sum = s) = sum_a P(left = a) P(right = s - a); it learns the digits from sums alone.

Pure functions on tensors: no files, no tracking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SUMS = 19  # 0 + 0 ... 9 + 9
HELD_OUT = 10


def held_out_pairs(seed: int) -> list[tuple[int, int]]:
    """The split's 10 unseen pairs: (i, p(i)) for a random permutation p with p(0) != 0 and p(9) != 9."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(10, generator=generator).tolist()
        if perm[0] != 0 and perm[9] != 9:
            return [(i, perm[i]) for i in range(10)]


def make_pairs(
    images: torch.Tensor, labels: torch.Tensor, pairs: list[tuple[int, int]], per_pair: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`per_pair` images for each (left, right) pair, drawn from images (N, 28, 28) uint8 of those digits:
    float images (M, 1, 28, 56) in [0, 1], their sums and their pair index into `pairs`."""
    generator = torch.Generator().manual_seed(seed)
    by_digit = [torch.nonzero(labels == d).flatten() for d in range(10)]

    def draw(digit: int) -> torch.Tensor:
        pool = by_digit[digit]
        return pool[torch.randint(len(pool), (per_pair,), generator=generator)]

    left = torch.cat([draw(a) for a, _ in pairs])
    right = torch.cat([draw(b) for _, b in pairs])
    x = torch.cat([images[left], images[right]], dim=2).unsqueeze(1).float().div(255)
    sums = torch.tensor([a + b for a, b in pairs]).repeat_interleave(per_pair)
    index = torch.arange(len(pairs)).repeat_interleave(per_pair)
    return x, sums, index


def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class EndToEnd(nn.Module):
    """The whole 28 x 56 image to log-probabilities of the 19 sums."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.net = _mlp(28 * 56, hidden, SUMS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.net(x), dim=1)


class Factored(nn.Module):
    """One digit MLP on each 28 x 28 half, a fixed adder on their two distributions: log-probabilities
    of the 19 sums."""

    def __init__(self, hidden: list[int]):
        super().__init__()
        self.digit = _mlp(28 * 28, hidden, 10)

    def digits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each half's digit probabilities, (N, 10) twice."""
        return self.digit(x[..., :28]).softmax(1), self.digit(x[..., 28:]).softmax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.digits(x)
        # P(sum = s) = sum over a of P(left = a) P(right = s - a): the outer product, summed along its anti-diagonals
        joint = left.unsqueeze(2) * right.unsqueeze(1)  # (N, 10, 10)
        sums = torch.zeros(len(x), SUMS, dtype=joint.dtype)
        index = (torch.arange(10).unsqueeze(1) + torch.arange(10).unsqueeze(0)).flatten()
        sums.index_add_(1, index, joint.flatten(1))
        return sums.clamp_min(1e-12).log()


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch: int, seed: int) -> None:
    """Adam on the sums' negative log-likelihood, in a seeded order."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(batch):
            optimizer.zero_grad(set_to_none=True)
            F.nll_loss(model(x[idx]), y[idx]).backward()
            optimizer.step()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())
