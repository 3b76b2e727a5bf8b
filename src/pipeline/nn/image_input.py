"""Images as callers send them, made into what the networks take: float32 (N, 1, 28, 28) in [0, 1].

The registered model is called from Python and over HTTP (`mlflow models serve`), where JSON numbers
arrive as int64 or float64 arrays. Both scales are common: floats in [0, 1] (torchvision's
`ToTensor`) and 8-bit pixels in [0, 255] (MNIST's own files, PIL). The dtype tells them apart, so
neither is guessed from the values: an integer array is divided by 255, a float array is taken as it
is. Anything else is refused with what was wrong and what is accepted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SIDE = 28
ACCEPTED = (
    "send MNIST images as floats in [0, 1] or integers (uint8) in [0, 255], "
    "shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784)"
)
_SHAPES = ((1, SIDE, SIDE), (SIDE, SIDE), (SIDE * SIDE,))


class ImageInputError(ValueError):
    """Images the model cannot take; the message names the problem and the accepted forms."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}: {ACCEPTED}.")


def to_model_input(images: Any) -> np.ndarray:
    """`images` (array-like: numpy, a torch tensor, nested lists, a DataFrame of 784 columns) as
    float32 (N, 1, 28, 28) in [0, 1]. Raises ImageInputError for any other dtype, shape or range."""
    try:
        array = np.asarray(images)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise ImageInputError(f"the images are not a rectangular array ({e})") from None
    _check_shape(array.shape)
    if array.dtype.kind in "iu":
        scaled = _checked_integers(array)
    elif array.dtype.kind == "f":
        scaled = _checked_floats(array)
    else:
        raise ImageInputError(f"images of dtype {array.dtype} are not numbers the model reads")
    return scaled.reshape(len(array), 1, SIDE, SIDE)


def _check_shape(shape: tuple[int, ...]) -> None:
    if shape[1:] not in _SHAPES:
        raise ImageInputError(f"images of shape {shape} are not a batch of 28x28 images")
    if shape[0] == 0:
        raise ImageInputError("the batch holds no image (shape starts with 0)")


def _checked_integers(array: np.ndarray) -> np.ndarray:
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        raise ImageInputError(f"integer pixels must lie in [0, 255]; these span [{low}, {high}]")
    return array.astype(np.float32) / 255


def _checked_floats(array: np.ndarray) -> np.ndarray:
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ImageInputError(f"{bad} pixel(s) are NaN or infinite")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        hint = " (8-bit pixels: send them as integers, or divide by 255)" if high <= 255 and low >= 0 else ""
        raise ImageInputError(f"float pixels must lie in [0, 1]; these span [{low:g}, {high:g}]{hint}")
    return array.astype(np.float32)
