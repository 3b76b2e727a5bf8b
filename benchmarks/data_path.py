"""Data path: images/s of one pass over the training split, as float batches of 128 ready for the model.

ours:     TensorBatches over the uint8 tensors in memory + the uint8 -> float/255 conversion
          MNISTDataModule.on_after_batch_transfer does (and, in the augmented variant, the batched
          random_affine it applies while training).
baseline: torchvision.datasets.MNIST (read from the standard MNIST/raw IDX layout, built in a
          temp dir from the same data) + DataLoader(batch_size=128, shuffle=True) + ToTensor/Normalize,
          with num_workers=0 and 2. Workers are started for every pass (no persistent_workers), as a
          plain DataLoader does every epoch. For the augmented variant the baseline adds the per-image
          equivalent, transforms.RandomAffine (same ranges: +-10 degrees, +-2 px, scale 0.9-1.1); one
          more row compares it with the plain, unaugmented baseline (the conservative ratio).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import data_root, interleaved, median, row

BATCH = 128
TARGET = (">=", 30, "ratio")


def torchvision_folder(root: Path, source: Path) -> Path:
    """Write the four IDX files where torchvision.datasets.MNIST looks: <root>/MNIST/raw/."""
    from pipeline.data.mnist import encode_idx, load_split

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_split(source, split)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(images.numpy()))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(encode_idx(labels.numpy()))
    return root


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from pipeline.training.datamodule import MNISTDataModule, TensorBatches, random_affine

    n = 4096 if quick else None  # quick: a slice of the split, same slice for both sides
    dm = MNISTDataModule(root=str(data_root()))
    dm.setup("fit")
    images, labels = (t[:n] for t in dm.splits["train"])
    # The same 55k training examples for torchvision: the datamodule's fixed split of the 60k.
    order = torch.randperm(60000, generator=torch.Generator().manual_seed(dm.split_seed))
    train_idx = order[dm.val_size :][:n].tolist()

    def ours(augment: bool):
        def one_pass() -> float:
            start, seen = time.perf_counter(), 0
            for batch in TensorBatches(images, labels, BATCH, shuffle=True, seed=0):
                x, y = dm.on_after_batch_transfer(batch, 0)
                if augment:  # what on_after_batch_transfer adds while training with data.augment=true
                    x = random_affine(x, dm.max_shift)
                seen += len(y)
            return seen / (time.perf_counter() - start)

        return one_pass

    with tempfile.TemporaryDirectory(prefix="bench-tv-") as tmp:
        to_model = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
        affine = transforms.RandomAffine(degrees=10, translate=(2 / 28, 2 / 28), scale=(0.9, 1.1))
        root = str(torchvision_folder(Path(tmp), data_root()))
        dataset = datasets.MNIST(root=root, train=True, download=False, transform=transforms.Compose(to_model))
        augmented = datasets.MNIST(
            root=root, train=True, download=False, transform=transforms.Compose([affine, *to_model])
        )

        def baseline(workers: int, augment: bool = False):
            subset = Subset(augmented if augment else dataset, train_idx)

            def one_pass() -> float:
                start, seen = time.perf_counter(), 0
                for _x, y in DataLoader(subset, batch_size=BATCH, shuffle=True, num_workers=workers):
                    seen += len(y)
                return seen / (time.perf_counter() - start)

            return one_pass

        got = interleaved(
            {
                "ours": ours(False),
                "ours_aug": ours(True),
                "tv_w0": baseline(0),
                "tv_w2": baseline(2),
                "tv_aug_w0": baseline(0, True),
                "tv_aug_w2": baseline(2, True),
            },
            repeats,
        )
        # Same batches, same values: check the baseline decodes what we train on (before Normalize).
        x_tv = torch.stack([transforms.ToTensor()(dataset.data[i].numpy()) for i in train_idx[:64]])
        x_ours = dm.on_after_batch_transfer((images[:64], labels[:64]), 0)[0]
        same_pixels = bool(torch.allclose(x_tv, x_ours))

    med = {k: median(v) for k, v in got.items()}
    size = f"{len(train_idx)} images, batch {BATCH}"
    rows = []
    for ours_key, base_key, case in (
        ("ours", "tv", "no augmentation vs DataLoader"),
        ("ours_aug", "tv_aug", "random_affine vs DataLoader+RandomAffine"),
    ):
        for workers in (0, 2):
            base = f"{base_key}_w{workers}"
            rows.append(
                row(
                    "data",
                    f"{case}, workers={workers}",
                    med[ours_key],
                    med[base],
                    "img/s",
                    TARGET,
                    note=size,
                    same_pixels=same_pixels,
                    samples_ours=got[ours_key],
                    samples_baseline=got[base],
                )
            )
    rows.append(
        row(
            "data",
            "random_affine vs unaugmented DataLoader, workers=2",
            med["ours_aug"],
            med["tv_w2"],
            "img/s",
            note=f"{size}; conservative: the baseline does less work",
            samples_ours=got["ours_aug"],
            samples_baseline=got["tv_w2"],
        )
    )
    return rows
