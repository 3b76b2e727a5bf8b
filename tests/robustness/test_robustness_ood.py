"""OOD scores, AUROC (vs sklearn), IDX/Fashion-MNIST loading and noise sets."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from pipeline.robustness.ood import (
    DEBIAN_FASHION_MNIST_DIR,
    auroc,
    load_fashion_mnist_test,
    max_softmax_scores,
    noise_images,
    read_idx,
    to_model_input,
)


def _sklearn_auroc(s_in, s_out) -> float:
    s_in, s_out = np.asarray(s_in, dtype=float), np.asarray(s_out, dtype=float)
    labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return roc_auc_score(labels, np.r_[s_in, s_out])


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.integers(0, 6, size=rng.integers(1, 300))  # few distinct values: many ties
    s_out = rng.integers(0, 5, size=rng.integers(1, 300))
    assert auroc(torch.tensor(s_in), torch.tensor(s_out)) == pytest.approx(_sklearn_auroc(s_in, s_out), abs=1e-12)


def test_auroc_matches_sklearn_continuous():
    g = torch.Generator().manual_seed(0)
    s_in, s_out = torch.rand(1000, generator=g) + 0.2, torch.rand(700, generator=g)
    assert auroc(s_in, s_out) == pytest.approx(_sklearn_auroc(s_in.numpy(), s_out.numpy()), abs=1e-12)


@settings(max_examples=50, deadline=None, database=None)
@given(
    s_in=st.lists(st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1)), min_size=1, max_size=40),
    s_out=st.lists(st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 1)), min_size=1, max_size=40),
)
def test_auroc_property(s_in, s_out):
    value = auroc(torch.tensor(s_in), torch.tensor(s_out))
    assert value == pytest.approx(_sklearn_auroc(s_in, s_out), abs=1e-9)
    assert value + auroc(torch.tensor(s_out), torch.tensor(s_in)) == pytest.approx(1.0)


def test_auroc_edge_cases():
    assert auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert auroc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 0.0
    assert auroc(torch.ones(5), torch.ones(3)) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        auroc(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        auroc(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_max_softmax_scores(small_model, eval_batch):
    x, _ = eval_batch
    small_model.train()
    try:
        scores = max_softmax_scores(small_model, x, batch_size=50)
        assert small_model.training  # restored
    finally:
        small_model.eval()
    assert scores.shape == (len(x),)
    assert (scores >= 0.1 - 1e-6).all() and (scores <= 1).all()
    with torch.inference_mode():  # no gradients needed, so inference mode is fine here
        torch.testing.assert_close(max_softmax_scores(small_model, x, batch_size=len(x)), scores)


def test_in_distribution_scores_higher_than_noise(small_model, eval_batch):
    x, _ = eval_batch
    s_in = max_softmax_scores(small_model, x)
    s_out = max_softmax_scores(small_model, noise_images(256, "uniform", torch.Generator().manual_seed(0)))
    assert auroc(s_in, s_out) > 0.5


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_noise_images(kind):
    x = noise_images(100, kind, torch.Generator().manual_seed(0))
    assert x.shape == (100, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, noise_images(100, kind, torch.Generator().manual_seed(0)))
    assert not torch.equal(x, noise_images(100, kind, torch.Generator().manual_seed(1)))
    if kind == "gaussian":  # N(0.5, 1) clipped: roughly 31% of pixels at each bound
        assert 0.25 < (x == 0).float().mean() < 0.37
    with pytest.raises(ValueError, match=r"uniform.*gaussian"):
        noise_images(1, "salt")


# ---- IDX / Fashion-MNIST ----


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    return struct.pack(">I" + "I" * array.ndim, magic, *array.shape) + array.astype(np.uint8).tobytes()


def _write(path, array, gz=False):
    data = _idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture()
def tiny_fashion():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=5, dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_load_fashion_mnist_from_tiny_idx_files(tmp_path, tiny_fashion, gz):
    images, labels = tiny_fashion
    _write(tmp_path / "t10k-images-idx3-ubyte", images, gz)
    _write(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    got = load_fashion_mnist_test(tmp_path)
    assert got.dtype == torch.uint8 and got.shape == (5, 28, 28)
    assert np.array_equal(got.numpy(), images)
    _got_images, got_labels = load_fashion_mnist_test(str(tmp_path), return_labels=True)
    assert np.array_equal(got_labels.numpy(), labels)
    x = to_model_input(got)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and x.max() <= 1


def test_wrong_magic_raises_naming_file(tmp_path, tiny_fashion):
    images, labels = tiny_fashion
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x04" + _idx_bytes(images)[4:])
    _write(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(
        ValueError, match=r"t10k-images-idx3-ubyte.*magic number 0x00000804.*apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist_test(tmp_path)


def test_truncated_and_garbage_files_raise(tmp_path, tiny_fashion):
    images, _labels = tiny_fashion
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes(_idx_bytes(images)[:-10])
    with pytest.raises(ValueError, match=r"truncated-idx3-ubyte.*truncated or corrupted"):
        read_idx(truncated)
    garbage = tmp_path / "garbage-idx3-ubyte.gz"
    garbage.write_bytes(b"this is not gzip data at all")
    with pytest.raises(ValueError, match=r"garbage-idx3-ubyte.gz"):
        read_idx(garbage)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tiny)


def test_label_count_mismatch_raises(tmp_path, tiny_fashion):
    images, labels = tiny_fashion
    _write(tmp_path / "t10k-images-idx3-ubyte", images)
    _write(tmp_path / "t10k-labels-idx1-ubyte", labels[:3])
    with pytest.raises(ValueError, match="expected 5 labels"):
        load_fashion_mnist_test(tmp_path)


def test_missing_files_explain_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist_test(tmp_path)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    images, labels = load_fashion_mnist_test(return_labels=True)
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(torch.bincount(labels), torch.full((10,), 1000))
