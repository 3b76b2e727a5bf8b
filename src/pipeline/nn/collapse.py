"""A stack of linear layers without nonlinearity is one linear map: prove it on the trained network.

The identity-activation MLP computes  W_L(...(W_1 z + b_1)...) + b_L  with
z = (x - mean) / std. Multiplying it out gives one 784x10 map  x -> W x + c.
`collapse` builds that map; `compare` measures how far its logits are from the
network's (float rounding only) and whether it predicts the same digits.
"""

from __future__ import annotations

from typing import TypeGuard

import torch

from pipeline.nn.images import to_model_input
from pipeline.nn.models import MLP, Normalize


def is_linear_stack(model: object) -> TypeGuard[MLP]:
    return isinstance(model, MLP) and not any(
        isinstance(m, (torch.nn.ReLU, torch.nn.Sigmoid, torch.nn.Tanh, torch.nn.Dropout, torch.nn.BatchNorm1d))
        for m in model.net
    )


def collapse(model: MLP) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, c) with model(x) == x.flatten(1) @ W.T + c, computed in float64."""
    if not is_linear_stack(model):
        raise ValueError("only an MLP with activation=identity (and no dropout) is a linear map")
    norm = next(m for m in model.net if isinstance(m, Normalize))
    weight = torch.eye(784, dtype=torch.float64)
    bias = torch.zeros(784, dtype=torch.float64)
    for layer in model.linear_layers():
        w, b = layer.weight.detach().double(), layer.bias.detach().double()
        weight, bias = w @ weight, w @ bias + b
    mean, std = float(norm.mean), float(norm.std)
    # W (x - m)/s + c  =  (W/s) x + (c - W m/s)
    return weight / std, bias - weight.sum(1) * mean / std


def compare(model: MLP, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 2000) -> dict:
    """The network against its collapsed single map on uint8 images (N, 28, 28)."""
    weight, bias = collapse(model)
    max_diff, agree, correct_net, correct_map = 0.0, 0, 0, 0
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            x = to_model_input(images[i : i + batch_size])
            y = labels[i : i + batch_size]
            net = model(x)
            single = x.flatten(1).double() @ weight.T + bias
            max_diff = max(max_diff, float((net.double() - single).abs().max()))
            agree += int((net.argmax(1) == single.argmax(1)).sum())
            correct_net += int((net.argmax(1) == y).sum())
            correct_map += int((single.argmax(1) == y).sum())
    n = len(labels)
    return {
        "max_logit_diff": max_diff,
        "prediction_agreement": agree / n,
        "network_acc": correct_net / n,
        "single_map_acc": correct_map / n,
        "map_rank": int(torch.linalg.matrix_rank(weight)),
        "layers": len(model.linear_layers()),
    }
