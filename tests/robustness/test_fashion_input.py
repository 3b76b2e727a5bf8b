"""The robustness stage's external input, Fashion-MNIST, is pinned by content whatever its source."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from pipeline.data.idx import encode
from pipeline.robustness.ood import DEBIAN_FASHION_MNIST_DIR, is_published_fashion_test, load_fashion_mnist_test
from pipeline.stages.robustness import load_fashion


def _settings(folder) -> OmegaConf:
    return OmegaConf.create({"ood": {"fashion_dir": str(folder) if folder else None}})


def test_other_images_than_the_published_test_set_are_refused(tmp_path, capsys):
    images = np.random.default_rng(0).integers(0, 256, size=(10000, 28, 28), dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(encode(images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(encode(np.zeros(10000, dtype=np.uint8)))
    with pytest.raises(SystemExit) as stop:
        load_fashion(_settings(tmp_path))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"folder {tmp_path}" in err and "not the published ones" in err and "robustness.ood.fashion_dir" in err


def test_one_changed_pixel_is_enough_to_refuse():
    if not DEBIAN_FASHION_MNIST_DIR.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
    images = load_fashion_mnist_test()
    assert is_published_fashion_test(images)
    images[1234, 14, 14] ^= 1
    assert not is_published_fashion_test(images)
    assert not is_published_fashion_test(images.to(torch.int16))
