"""What the layers respond to: first-layer weights as images, and the digits that
most excite units deeper in the network.

Layer 1 of the MLP is 128 templates over 784 pixels; layer 1 of the CNN is a
bank of 3x3 kernels (edge and blob detectors). Deeper units have no pixel
picture of their own, so they are shown by the test digits that drive them hardest.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.common import plots
from pipeline.nn.images import to_model_input
from pipeline.nn.models import CNN, MLP, SmallConv


def first_layer_weights(model) -> torch.Tensor:
    """(units, h, w): MLP rows as 28x28 images, or CNN kernels (averaged over input channels)."""
    if isinstance(model, MLP):
        layer = model.linear_layers()[0]
        return layer.weight.detach().reshape(-1, 28, 28)
    if isinstance(model, CNN):
        conv = next(m for m in model.features if isinstance(m, torch.nn.Conv2d))
        return conv.weight.detach().mean(1)
    if isinstance(model, SmallConv):
        conv = next(m for m in model.net if isinstance(m, torch.nn.Conv2d))
        return conv.weight.detach().mean(1)
    raise ValueError(f"no first-layer picture for {type(model).__name__}")


def deep_units(model) -> torch.nn.Module:
    """The module whose output is the last hidden representation before the classifier."""
    if isinstance(model, MLP):
        layers = [i for i, m in enumerate(model.net) if isinstance(m, torch.nn.Linear)]
        return model.net[layers[-2] + 1]  # the activation after the last hidden layer
    if isinstance(model, CNN):
        return model.features
    if isinstance(model, SmallConv):
        return model.net[-2]  # the activation of the hidden layer
    raise ValueError(f"no hidden units to show for {type(model).__name__}")


def top_activating(
    model, images: torch.Tensor, units: int = 8, per_unit: int = 6, batch_size: int = 2000
) -> tuple[list[int], torch.Tensor]:
    """For the `units` most variable deep units: indices of the `per_unit` images driving each hardest."""
    outputs = []
    hook = deep_units(model).register_forward_hook(
        lambda m, i, o: outputs.append(o.detach().flatten(2).mean(2) if o.dim() == 4 else o.detach())
    )
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                model(to_model_input(images[i : i + batch_size]))
    finally:
        hook.remove()
    acts = torch.cat(outputs)  # (N, units)
    chosen = acts.std(0).argsort(descending=True)[:units].tolist()
    return chosen, torch.stack([acts[:, u].argsort(descending=True)[:per_unit] for u in chosen])


def write_figures(model, images: torch.Tensor, out_dir: Path) -> list[Path]:
    """figures: filters_layer1.png and filters_deep.png (empty for models without hidden layers)."""
    if isinstance(model, MLP) and not model.linear_layers()[:-1]:
        return []  # a single linear layer: its "filters" are the 10 class templates, shown all the same
    weights = first_layer_weights(model)
    size = "x".join(map(str, weights.shape[1:]))
    kind = "MLP layer-1 weights (28x28 each)" if isinstance(model, MLP) else f"conv layer-1 kernels ({size})"
    paths = [plots.filters_png(weights[:64], out_dir / "filters_layer1.png", f"{kind}: red +, blue -")]
    chosen, picks = top_activating(model, images)
    paths.append(
        plots.top_images_png(
            images,
            chosen,
            picks,
            out_dir / "filters_deep.png",
            "Deepest hidden units: the test digits that excite each most",
        )
    )
    return paths
