"""The registered model's files: weights and the model config, no pickled code.

A folder holds `weights.pt` (the state_dict: tensors only) and `model.json`
(the `model` config section). Loading rebuilds the network with
`models.build_model` and reads the weights with `weights_only=True`, so a
model from a stranger cannot run code when it is loaded, and what comes back
is an ordinary `nn.Module` (`.eval()`, `.train()`, gradients: attack libraries
such as IBM ART take it as it is).

MLflow finds this module through the model's MLmodel file (`loader_module`),
so `mlflow.pyfunc.load_model(...)` serves it too: numpy (N, 1, 28, 28) in
[0, 1] -> logits (N, 10).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEIGHTS = "weights.pt"
CONFIG = "model.json"
# The loader module an MLmodel file names: this one, or the name it had before the package layout
# (pipeline/packaged_model.py still answers to it, so models registered then load and serve).
LOADER_MODULES = frozenset({__name__, "pipeline.packaged_model"})


def save(model, model_cfg: Mapping[str, Any], folder: str | Path) -> Path:
    """Write the model's weights and config into `folder` (created)."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(dict(model_cfg), indent=2, sort_keys=True, default=list) + "\n")
    return folder


def is_packaged(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file()


def load(folder: str | Path):
    """The model saved in `folder`, as an nn.Module in eval mode on the CPU."""
    import torch

    from pipeline.nn.builders import build_model

    folder = Path(folder)
    model_cfg = json.loads((folder / CONFIG).read_text())
    model = build_model(model_cfg)
    model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


class _Predictor:
    """What `mlflow.pyfunc.load_model` wraps: numpy images in, numpy logits out."""

    def __init__(self, model):
        self.model = model

    def predict(self, data, params=None):
        import numpy as np
        import torch

        with torch.no_grad():
            return self.model(torch.as_tensor(np.asarray(data, dtype=np.float32))).numpy()


def _load_pyfunc(data_path: str):
    """MLflow's entry point for the python_function flavour (see MLmodel's `loader_module`)."""
    return _Predictor(load(data_path))
