"""Shared fixtures: the real MNIST, prepared once per test session."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A prepared data/mnist folder: the project's own if `dvc repro data` ran, else fetched now."""
    from pipeline.data import is_prepared, prepare

    own = PROJECT / "data" / "mnist"
    if is_prepared(own):
        return own
    return prepare(tmp_path_factory.mktemp("data") / "mnist", source="auto")


@pytest.fixture(scope="session")
def idx_dir(mnist_root, tmp_path_factory) -> Path:
    """The four official IDX files (two gzip-compressed), rebuilt from the prepared tensors."""
    from pipeline.data import encode_idx, load_split

    folder = tmp_path_factory.mktemp("idx")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_split(mnist_root, split)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(images.numpy()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels.numpy()), 1))
    return folder


def run_module(module: str, *args: str, cwd: Path = PROJECT, env: dict | None = None,
               timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m module args` as a user would, returning the finished process."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # never the user's store
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
