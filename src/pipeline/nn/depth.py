"""Depth against width, measured on small ReLU nets (claim 12).

Telgarsky's sawtooth: the tent map t(x) = 2x on [0, 1/2], 2(1 - x) on [1/2, 1], composed k times,
has 2^k linear pieces. A net of 2 ReLUs in each of k hidden layers computes it exactly (t is
2·relu(x) - 4·relu(x - 1/2) on [0, 1]); a one-hidden-layer ReLU net of width w has at most w + 1
pieces, so it needs a width that grows like 2^k. `smallest_shallow_width` measures that width by
training; `sawtooth_net` builds the deep one.

`regions_along_line` counts the linear regions a ReLU MLP cuts along the segment between two
inputs: the places where some neuron's pre-activation changes sign.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FIT_POINTS = 2048  # where the fits are trained and measured: 2^11 evenly spaced points of [0, 1] (8 per piece at k = 8)


def sawtooth(x: torch.Tensor, k: int) -> torch.Tensor:
    """The tent map composed k times."""
    for _ in range(k):
        x = torch.where(x <= 0.5, 2 * x, 2 * (1 - x))
    return x


def grid(points: int = FIT_POINTS) -> torch.Tensor:
    return torch.linspace(0, 1, points, dtype=torch.float64).unsqueeze(1)


def rmse(model: nn.Module, k: int, points: int = FIT_POINTS) -> float:
    x = grid(points)
    with torch.no_grad():
        return float((model(x) - sawtooth(x, k)).pow(2).mean().sqrt())


def sawtooth_net(k: int) -> nn.Sequential:
    """k hidden layers of 2 ReLUs (2k neurons) that compute the sawtooth exactly on [0, 1]."""
    layers: list[nn.Module] = []
    for i in range(k):
        first = nn.Linear(1 if i == 0 else 2, 2).double()
        with torch.no_grad():
            # the tent of the previous layer's output t = 2·h1 - 4·h2, fed to relu(t) and relu(t - 1/2)
            incoming = torch.tensor([[1.0]]) if i == 0 else torch.tensor([[2.0, -4.0]])
            first.weight.copy_(torch.cat([incoming, incoming]))
            first.bias.copy_(torch.tensor([0.0, -0.5]))
        layers += [first, nn.ReLU()]
    out = nn.Linear(2, 1).double()
    with torch.no_grad():
        out.weight.copy_(torch.tensor([[2.0, -4.0]]))
        out.bias.zero_()
    return nn.Sequential(*layers, out)


def deep_narrow_net(k: int, width: int = 2) -> nn.Sequential:
    """The deep net's shape with PyTorch's random initialisation: k hidden layers of `width` ReLUs."""
    layers: list[nn.Module] = []
    for i in range(k):
        layers += [nn.Linear(1 if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 1)).double()


def shallow_net(width: int, generator: torch.Generator) -> nn.Sequential:
    """One hidden layer whose ReLU kinks start spread over [0, 1] (uniform at random), as a fit
    of a function on [0, 1] should start; the output layer is then solved by least squares."""
    hidden, out = nn.Linear(1, width).double(), nn.Linear(width, 1).double()
    with torch.no_grad():
        sign = torch.randint(0, 2, (width, 1), generator=generator, dtype=torch.float64) * 2 - 1
        kinks = torch.rand(width, generator=generator, dtype=torch.float64)
        hidden.weight.copy_(sign)
        hidden.bias.copy_(-sign.squeeze(1) * kinks)
    return nn.Sequential(hidden, nn.ReLU(), out)


def _least_squares_output(model: nn.Sequential, k: int) -> None:
    x = grid()
    hidden, out = model[0], model[2]
    assert isinstance(hidden, nn.Linear) and isinstance(out, nn.Linear)
    with torch.no_grad():
        features = torch.cat([hidden(x).clamp_min(0), torch.ones_like(x)], dim=1)
        solution = torch.linalg.lstsq(features, sawtooth(x, k), driver="gelsd").solution
        out.weight.copy_(solution[:-1].T)
        out.bias.copy_(solution[-1])


def train(model: nn.Module, k: int, steps: int, lr: float = 1e-3) -> float:
    """Full-batch Adam on the mean squared error over the grid; the RMSE it ends at."""
    x = grid()
    y = sawtooth(x, k)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        optimizer.step()
    return rmse(model, k)


def fit_shallow(width: int, k: int, seed: int, steps: int) -> float:
    """The RMSE a one-hidden-layer net of this width reaches on the k-fold sawtooth."""
    generator = torch.Generator().manual_seed(seed * 100_003 + width)
    model = shallow_net(width, generator)
    _least_squares_output(model, k)
    return min(rmse(model, k), train(model, k, steps))


def smallest_shallow_width(k: int, target: float, seed: int, steps: int, max_width: int = 4096) -> dict:
    """The smallest width whose fit reaches `target` RMSE: doubling from 2, then bisection.

    Returns the width (None if even max_width does not reach it) and every width tried with its RMSE.
    """
    tried: dict[int, float] = {}

    def reaches(width: int) -> bool:
        tried[width] = fit_shallow(width, k, seed, steps)
        return tried[width] <= target

    width = 2
    while not reaches(width):
        if width >= max_width:
            return {"width": None, "tried": tried}
        width = min(2 * width, max_width)
    low, high = width // 2, width  # low failed (or is 1), high reaches it
    while high - low > max(1, high // 8):  # to within about 12 %: the growth over k is what is measured
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    return {"width": high, "tried": tried}


def regions_along_line(model: nn.Sequential, a: torch.Tensor, b: torch.Tensor, points: int) -> int:
    """Linear regions of a ReLU MLP (Linear and ReLU layers) along the segment from a to b, counted
    as changes of the pattern of active neurons between `points` evenly spaced samples.

    Two boundaries closer than one sample spacing count once: the caller doubles `points` to see
    that the count has settled.
    """
    t = torch.linspace(0, 1, points, dtype=torch.float64).unsqueeze(1)
    layers = [layer for layer in model if not isinstance(layer, nn.Flatten)]
    ends = torch.stack([a.double().flatten(), b.double().flatten()])
    patterns = []
    with torch.no_grad():
        if layers and isinstance(layers[0], nn.Linear):  # affine along the segment: two points give it all
            ends = ends @ layers[0].weight.double().T + layers[0].bias.double()
            layers = layers[1:]
        h = ends[0] + t * (ends[1] - ends[0])
        for layer in layers:
            if isinstance(layer, nn.Linear):
                h = h @ layer.weight.double().T + layer.bias.double()
            elif isinstance(layer, nn.ReLU):
                patterns.append(h > 0)
                h = h.clamp_min(0)
            else:
                raise TypeError(f"regions_along_line handles Linear and ReLU layers, not {type(layer).__name__}")
    if not patterns:
        return 1
    pattern = torch.cat(patterns, dim=1)
    return 1 + int((pattern[1:] != pattern[:-1]).any(dim=1).sum())


def max_regions_on_a_line(widths: list[int]) -> float:
    """The most linear pieces a ReLU net with these hidden widths can cut a line into: each layer
    of n neurons can split every piece into at most n + 1 (the product over layers)."""
    return math.prod(n + 1 for n in widths)
