"""The official MNIST-C release (Mu & Gilmer 2019) read from its .npy files.

Layout of the release (https://zenodo.org/records/3239543), one folder per corruption:

    <dir>/<corruption>/test_images.npy   uint8 (10000, 28, 28, 1)
    <dir>/<corruption>/test_labels.npy   uint8 or int (10000,)

By default the robustness stage regenerates MNIST-C with the project's own port
(corruptions.py); `robustness.mnist_c_dir=<dir>` evaluates on these files instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class MnistCError(ValueError):
    """The folder does not hold the official MNIST-C layout; the message says what is wrong."""


def corruptions_in(root: str | Path) -> list[str]:
    """The corruption folders of an MNIST-C release, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise MnistCError(
            f"robustness.mnist_c_dir={root} is not a folder; download and unzip mnist_c.zip "
            f"(zenodo.org/records/3239543) or set robustness.mnist_c_dir=null for the built-in port."
        )
    return sorted(p.name for p in root.iterdir() if (p / "test_images.npy").is_file())


def load_corruption(root: str | Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images (N, 28, 28), int64 labels (N,)) of one corruption, checked against the layout."""
    folder = Path(root) / name
    files = folder / "test_images.npy", folder / "test_labels.npy"
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MnistCError(
            f"MNIST-C corruption {name!r} is missing {', '.join(missing)}; found corruptions: "
            f"{', '.join(corruptions_in(root)) or 'none'}. Fix robustness.mnist_c_dir or "
            f"robustness.corruptions."
        )
    try:
        # allow_pickle=False: a .npy from elsewhere must not run code on load.
        images, labels = (np.load(f, allow_pickle=False) for f in files)
    except ValueError as err:
        raise MnistCError(f"{folder} holds an unreadable .npy file ({err}); re-extract the MNIST-C release.") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise MnistCError(f"{files[0]} holds {images.dtype} {images.shape}; MNIST-C images are uint8 (N, 28, 28, 1).")
    if labels.shape != (images.shape[0],) or labels.size == 0 or labels.min() < 0 or labels.max() > 9:
        raise MnistCError(f"{files[1]} holds labels of shape {labels.shape}; expected ({images.shape[0]},) in 0..9.")
    return torch.from_numpy(images[..., 0].copy()), torch.from_numpy(labels.astype(np.int64))
