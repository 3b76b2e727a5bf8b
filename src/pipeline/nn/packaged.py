"""The registered model's files: weights and the model config, no pickled code.

A folder holds `weights.pt` (the state_dict: tensors only) and `model.json`
(the `model` config section). Loading rebuilds the network with
`models.build_model` and reads the weights with `weights_only=True`, so a
model from a stranger cannot run code when it is loaded, and what comes back
is an ordinary `nn.Module` (`.eval()`, `.train()`, gradients: attack libraries
such as IBM ART take it as it is).

MLflow serves a folder through the python_function loader its MLmodel file names
(`loader_module`): pipeline.tracking.serving for versions logged now, this module for
versions logged before it. Both answer as `DigitPredictor` does: images in any form
pipeline.nn.image_input accepts -> a DataFrame with the digit and its ten probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEIGHTS = "weights.pt"
CONFIG = "model.json"
# The loader modules of versions logged before pipeline/tracking/serving.py: this one, and the name it
# had before the package layout (pipeline/packaged_model.py still answers to it). They load and serve.
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


DIGIT = "digit"
PROBABILITIES = tuple(f"p{k}" for k in range(10))


class DigitPredictor:
    """What `mlflow.pyfunc.load_model` wraps: images in, one row per image out.

    The answer is a DataFrame with the columns `digit` (int64, the most probable class) and
    `p0`..`p9` (float64, the softmax probabilities): MLflow's server writes a DataFrame as JSON
    records, `{"predictions": [{"digit": 7, "p0": ..., "p9": ...}]}`, named, one flat object a
    digit. Bad images raise image_input.ImageInputError (a ValueError).
    """

    def __init__(self, model):
        self.model = model

    def predict(self, data, params=None):
        import pandas as pd
        import torch

        from pipeline.nn.image_input import to_model_input

        with torch.no_grad():
            logits = self.model(torch.from_numpy(to_model_input(data))).double()
        probabilities = torch.softmax(logits, 1).numpy()
        answer = pd.DataFrame(probabilities, columns=list(PROBABILITIES))
        answer.insert(0, DIGIT, probabilities.argmax(1).astype("int64"))
        return answer


def _load_pyfunc(data_path: str):
    """MLflow's entry point for versions whose MLmodel names this module as `loader_module`."""
    return DigitPredictor(load(data_path))
