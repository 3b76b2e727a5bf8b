"""The python_function model MLflow serves: the loader an MLmodel file names, its signature and example.

`mlflow models serve -m models:/mnist-mlp@champion` imports this module by the name in MLmodel's
`loader_module` and calls `_load_pyfunc` on the model's data folder. The answer is
packaged.DigitPredictor's: a DataFrame with `digit` and `p0`..`p9`. What this module adds is MLflow's
error: images the model cannot take raise MlflowException(INVALID_PARAMETER_VALUE), which the server
answers with 400 and the message, where any other exception gives a generic "unexpected error" and a
stack trace.

The signature describes the outputs only. MLflow's tensor specs fix one dtype and one rank, and both
its server (which casts JSON to the declared dtype) and its pyfunc (which refuses any other dtype)
enforce them before `predict` runs: declaring float32 (N, 1, 28, 28) would refuse float64 arrays and
turn 8-bit pixels into floats out of range. image_input checks the input instead, with a message
saying what it accepts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.nn import packaged
from pipeline.nn.image_input import ImageInputError

if TYPE_CHECKING:
    import numpy as np
    from mlflow.models import ModelSignature

LOADER = __name__
# Every loader module a logged version of this pipeline names: versions logged before this module
# serve through pipeline.nn.packaged (the same answer, under the float32 signature they were logged with).
LOADER_MODULES = packaged.LOADER_MODULES | {LOADER}


class ServedDigitPredictor(packaged.DigitPredictor):
    """DigitPredictor whose refusals are MLflow's INVALID_PARAMETER_VALUE (HTTP 400 from the server)."""

    def predict(self, data, params=None):
        from mlflow.exceptions import MlflowException

        try:
            return super().predict(data, params)
        except ImageInputError as e:
            raise MlflowException.invalid_parameter_value(str(e)) from None


def _load_pyfunc(data_path: str) -> ServedDigitPredictor:
    """MLflow's entry point for the python_function flavour (see MLmodel's `loader_module`)."""
    return ServedDigitPredictor(packaged.load(data_path))


def signature() -> ModelSignature:
    """The outputs: `digit` (long) and `p0`..`p9` (double); the inputs are checked by image_input."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    columns: list[ColSpec | TensorSpec] = [
        ColSpec("long", packaged.DIGIT),
        *(ColSpec("double", name) for name in packaged.PROBABILITIES),
    ]
    return ModelSignature(inputs=None, outputs=Schema(columns))


def input_example() -> np.ndarray:
    """One image as the network takes it: float32 (1, 1, 28, 28) in [0, 1] (a vertical bar, a "1")."""
    import numpy as np

    image = np.zeros((1, 1, 28, 28), np.float32)
    image[0, 0, 4:24, 13:15] = 1.0
    return image
