"""pipeline.nn.image_input: every accepted dtype and shape gives the same float32 (N, 1, 28, 28) in
[0, 1], from a real MNIST digit; wrong sizes, out-of-range values, NaN and non-numbers are refused with
the problem and the accepted forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.nn.image_input import ACCEPTED, ImageInputError, to_model_input


@pytest.fixture(scope="module")
def digits(mnist_root) -> np.ndarray:
    """Three real test digits as MNIST stores them: uint8 (3, 28, 28)."""
    from pipeline.data.mnist import load_split

    images, _ = load_split(mnist_root, "test")
    return images[:3].numpy()


def _expected(digits: np.ndarray) -> np.ndarray:
    return (digits.astype(np.float32) / 255).reshape(3, 1, 28, 28)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 28, 28), (3, 784)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32, np.uint16])
def test_integer_pixels_are_divided_by_255(digits, shape, dtype):
    out = to_model_input(digits.astype(dtype).reshape(shape))
    assert out.dtype == np.float32 and out.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(out, _expected(digits))
    assert out.max() == 1.0 and out.min() == 0.0  # MNIST digits use the whole 8-bit range


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (3, 28, 28), (3, 784)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_pixels_are_taken_as_they_are(digits, shape, dtype):
    floats = (digits / 255).astype(dtype).reshape(shape)
    out = to_model_input(floats)
    assert out.dtype == np.float32 and out.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(out, _expected(digits), atol=1e-3 if dtype == np.float16 else 1e-7)


def test_json_lists_torch_tensors_and_dataframes_are_arrays_too(digits):
    """What MLflow's server hands over (parsed JSON: int64 or float64), and what Python callers hold."""
    import pandas as pd

    expected = _expected(digits)
    np.testing.assert_array_equal(to_model_input(digits.tolist()), expected)  # JSON integers
    np.testing.assert_allclose(to_model_input((digits / 255).tolist()), expected, atol=1e-7)  # JSON floats
    np.testing.assert_array_equal(to_model_input(torch.from_numpy(digits)), expected)
    np.testing.assert_array_equal(to_model_input(pd.DataFrame(digits.reshape(3, 784))), expected)


def test_a_single_image_is_a_batch_of_one(digits):
    assert to_model_input(digits[:1]).shape == (1, 1, 28, 28)


@pytest.mark.parametrize(
    ("images", "problem"),
    [
        (np.zeros((2, 27, 27), np.uint8), "images of shape (2, 27, 27) are not a batch of 28x28 images"),
        (np.zeros((2, 3, 28, 28), np.float32), "images of shape (2, 3, 28, 28) are not a batch of 28x28 images"),
        (np.zeros((2, 783)), "images of shape (2, 783) are not a batch of 28x28 images"),
        (np.zeros((28, 28)), "images of shape (28, 28) are not a batch of 28x28 images"),  # one image, no batch
        (np.zeros(784), "images of shape (784,) are not a batch of 28x28 images"),
        (np.zeros((0, 28, 28)), "the batch holds no image (shape starts with 0)"),
        (np.full((1, 28, 28), 300), "integer pixels must lie in [0, 255]; these span [300, 300]"),
        (np.full((1, 28, 28), -1), "integer pixels must lie in [0, 255]; these span [-1, -1]"),
        (np.full((1, 784), -0.5), "float pixels must lie in [0, 1]; these span [-0.5, -0.5]"),
        (np.full((1, 784), 1.5, np.float32), "float pixels must lie in [0, 1]; these span [1.5, 1.5]"),
        (np.full((1, 28, 28), np.inf), "784 pixel(s) are NaN or infinite"),
        (np.array([["a"] * 784]), "images of dtype <U1 are not numbers the model reads"),
        (np.ones((1, 28, 28), bool), "images of dtype bool are not numbers the model reads"),
        ([[0.0] * 784, [0.0] * 783], "the images are not a rectangular array"),
    ],
)
def test_bad_images_are_refused_naming_the_problem_and_the_accepted_forms(images, problem):
    with pytest.raises(ImageInputError) as refused:
        to_model_input(images)
    message = str(refused.value)
    assert message.startswith(problem), message
    assert message.endswith(ACCEPTED + ".")
    assert "(N, 1, 28, 28), (N, 28, 28) or (N, 784)" in message and "[0, 255]" in message
    assert isinstance(refused.value, ValueError)


def test_nan_pixels_are_counted_and_refused(digits):
    images = (digits / 255).astype(np.float64)
    images[1, 5, 7] = images[2, 0, 0] = np.nan
    with pytest.raises(ImageInputError, match=r"^2 pixel\(s\) are NaN or infinite: send MNIST images"):
        to_model_input(images)


def test_8_bit_pixels_sent_as_floats_get_the_hint_to_send_integers(digits):
    with pytest.raises(ImageInputError, match=r"these span \[0, 255\] \(8-bit pixels: send them as integers"):
        to_model_input(digits.astype(np.float64))


def test_the_callers_array_is_not_changed(digits):
    floats = digits / 255
    before = floats.copy()
    out = to_model_input(floats.reshape(3, 1, 28, 28))
    out[:] = 0.5
    np.testing.assert_array_equal(floats, before)
