"""Out-of-distribution detection: max-softmax scores, AUROC and OOD data sets.

Baseline of Hendrycks & Gimpel (2017): score each image by its maximum softmax
probability; in-distribution images should score higher. ``auroc`` treats the
in-distribution set as the positive class.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from pipeline.data import idx
from pipeline.nn.images import to_model_input as to_model_input  # (re-exported: the OOD sets' input)

from ._utils import eval_mode

#: Where Debian's ``dataset-fashion-mnist`` package puts the (gzipped) IDX files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_TEST_IMAGES = "t10k-images-idx3-ubyte"
FASHION_TEST_LABELS = "t10k-labels-idx1-ubyte"
#: sha256 of the 10,000 published Fashion-MNIST test images as a uint8 (N,28,28) array: the
#: robustness stage's external input, pinned by content whatever its source (Debian, a folder,
#: torchvision), so an OOD result never changes without this line (a code dependency) changing.
FASHION_TEST_IMAGES_SHA256 = "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"
_INSTALL_HINT = (
    "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files land in "
    f"{DEBIAN_FASHION_MNIST_DIR}) or pass root= a folder holding {FASHION_TEST_IMAGES}[.gz] "
    f"and {FASHION_TEST_LABELS}[.gz] from https://github.com/zalandoresearch/fashion-mnist."
)


@torch.no_grad()
def max_softmax_scores(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Maximum softmax probability per image, shape (N,), on ``x``'s device (eval mode)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with eval_mode(model):
        scores = [
            torch.softmax(model(x[s : s + batch_size]).float(), dim=1).amax(dim=1)
            for s in range(0, x.shape[0], batch_size)
        ]
    return torch.cat(scores) if scores else torch.empty(0, device=x.device)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties given their mean rank (as scipy.stats.rankdata)."""
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
    counts = counts.double()  # float64: rank sums of large sets must stay exact
    below = torch.cumsum(counts, 0) - counts  # number of values strictly below each unique value
    ranks: torch.Tensor = (below + (counts + 1) / 2)[inverse]
    return ranks


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Area under the ROC curve, in-distribution = positive class (higher score = more ID).

    Computed as the Mann-Whitney U statistic from average ranks, so ties count one half;
    equals ``sklearn.metrics.roc_auc_score``.
    """
    s_in = torch.as_tensor(scores_in).detach().flatten().double().cpu()
    s_out = torch.as_tensor(scores_out).detach().flatten().double().cpu()
    if s_in.numel() == 0 or s_out.numel() == 0:
        raise ValueError("auroc needs at least one in-distribution and one OOD score")
    if torch.isnan(s_in).any() or torch.isnan(s_out).any():
        raise ValueError("auroc got NaN scores")
    n_in, n_out = s_in.numel(), s_out.numel()
    ranks = _average_ranks(torch.cat([s_in, s_out]))
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2.0
    return float(u / (n_in * n_out))


def read_idx(path: str | Path) -> np.ndarray:
    """Read a uint8 IDX file (optionally .gz) into a numpy array, validating its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # includes gzip.BadGzipFile and truncated gzip streams
        raise ValueError(f"cannot read IDX file {path}: {err}. {_INSTALL_HINT}") from err
    try:
        return idx.decode(data, str(path), ndims=(1, 3))  # labels or images
    except idx.IDXError as err:
        raise ValueError(f"{err}. {_INSTALL_HINT}") from err


def is_published_fashion_test(images: torch.Tensor) -> bool:
    """Whether uint8 images (N,28,28) are exactly the published Fashion-MNIST test set."""
    data = images.detach().cpu().contiguous().numpy().tobytes()
    return images.dtype == torch.uint8 and hashlib.sha256(data).hexdigest() == FASHION_TEST_IMAGES_SHA256


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"Fashion-MNIST test file {stem}[.gz] not found in {root}. {_INSTALL_HINT}")


def load_fashion_mnist_test(
    root: str | Path | None = None, return_labels: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Load the 10,000 Fashion-MNIST test images as a uint8 tensor (N,28,28).

    Reads ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (plain or ``.gz``) from
    ``root``, by default Debian's ``/usr/share/datasets/fashion-mnist``. With
    ``return_labels=True`` returns ``(images, labels)``. Convert for a model with
    :func:`to_model_input`.
    """
    root = DEBIAN_FASHION_MNIST_DIR if root is None else Path(root)
    images_path, labels_path = _find(root, FASHION_TEST_IMAGES), _find(root, FASHION_TEST_LABELS)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected images of shape (N,28,28), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: expected {images.shape[0]} labels to match {images_path}, got shape {labels.shape}"
        )
    images_t = torch.from_numpy(images.copy())  # copy: frombuffer arrays are read-only
    if return_labels:
        return images_t, torch.from_numpy(labels.astype(np.int64))
    return images_t


def noise_images(
    n: int,
    kind: str = "uniform",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Synthetic OOD images (n,1,28,28) float32 in [0,1] (Hendrycks & Gimpel 2017).

    ``"uniform"``: i.i.d. U[0,1] pixels; ``"gaussian"``: i.i.d. N(0.5, 1) clipped to [0,1].
    Drawn on the generator's device (CPU by default), then moved to ``device``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    g_device = generator.device if generator is not None else torch.device("cpu")
    shape = (n, 1, 28, 28)
    if kind == "uniform":
        x = torch.rand(shape, generator=generator, device=g_device)
    elif kind == "gaussian":
        x = (0.5 + torch.randn(shape, generator=generator, device=g_device)).clamp(0.0, 1.0)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; valid kinds: ['uniform', 'gaussian']")
    return x.to(device if device is not None else g_device)
