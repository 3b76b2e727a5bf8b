"""What each robustness number was measured on, as MLflow evaluation datasets (name, digest, source,
profile as plain dicts; tracking/ turns them into MLflow's records).

Attacks and the clean baseline use the seeded test subset (data.mnist.test_split_record); the
corruption numbers use MNIST-C (the project's port applied to that subset, or the official release's
files); the Fashion-MNIST AUROC uses the Fashion-MNIST test images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.common import metric_names as names
from pipeline.robustness.ood import FASHION_TEST_IMAGES_SHA256

FASHION_METRIC = names.ood_auroc("fashion_mnist")


def mnist_c_record(test: Mapping[str, Any], corruptions: list[str], mnist_c_dir: str | None) -> dict[str, Any]:
    """MNIST-C as the stage used it: the port's corruptions of the test subset `test`, or the official
    files under `mnist_c_dir` (the digest then covers their bytes)."""
    digest = hashlib.sha256()
    if mnist_c_dir:
        for name in sorted(corruptions):
            for part in ("test_images.npy", "test_labels.npy"):
                digest.update((Path(mnist_c_dir) / name / part).read_bytes())
        source = {"url": "https://zenodo.org/records/3239543", "path": str(Path(mnist_c_dir).resolve())}
    else:
        digest.update(f"{test['digest']}\n{','.join(sorted(corruptions))}".encode())
        source = {"generated_from": test["name"], "by": "pipeline.robustness.corruptions"}
    return {
        "name": "mnist-c",
        "digest": digest.hexdigest()[:32],
        "source": source,
        "profile": {"corruptions": sorted(corruptions), "official_files": bool(mnist_c_dir)},
    }


def fashion_record(n_images: int | None) -> dict[str, Any]:
    """The Fashion-MNIST test images (the first `n_images` of them, when set) the OOD check scores."""
    whole = not n_images or n_images >= 10000
    text = FASHION_TEST_IMAGES_SHA256 + ("" if whole else f"\nfirst {n_images}")
    return {
        "name": "fashion-mnist-test" if whole else f"fashion-mnist-test-{n_images}",
        "digest": hashlib.sha256(text.encode()).hexdigest()[:32],
        "source": {"url": "https://github.com/zalandoresearch/fashion-mnist", "split": "test"},
        "profile": {"num_rows": 10000 if whole else n_images, "images_sha256": FASHION_TEST_IMAGES_SHA256},
    }


def dataset_key(metric: str) -> str:
    """Which of the stage's datasets a robustness metric was measured on: 'test', 'mnist_c' or 'fashion'."""
    if metric == FASHION_METRIC:
        return "fashion"
    if metric.startswith("shift/") and metric != names.SHIFT_CLEAN_ECE:
        return "mnist_c"
    return "test"
