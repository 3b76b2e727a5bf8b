"""MNIST in memory: uint8 tensors on the training device, batched by slicing a shuffled index.

There is no Dataset, no DataLoader worker and no per-sample Python: an epoch is
one permutation, and a batch is one indexing operation. Conversion to float and
augmentation happen on whole batches, on the device, in `on_after_batch_transfer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F

from pipeline.data.mnist import is_prepared, load_split, prepare
from pipeline.nn.images import to_model_input


class TensorBatches:
    """An iterable of (images, labels) batches over tensors already in memory.

    Under data parallelism each rank takes an equal, disjoint share of every
    epoch's permutation (a few examples, fewer than the world size, may be
    dropped so all ranks run the same number of steps).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_fn: Callable[[], int] | None = None,
        epoch_size: int | None = None,
    ):
        self.images, self.labels = images, labels
        # Examples per epoch when it differs from the data: a small subset is cycled
        # (a fresh permutation each pass) so every subset size gets the same number of steps.
        self.epoch_size = epoch_size or len(labels)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        # The permutation follows the trainer's epoch when there is one, so a run
        # resumed from a checkpoint sees exactly the batches it would have seen.
        self.epoch_fn = epoch_fn
        self.passes = 0

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if self.shuffle:
            epoch = self.epoch_fn() if self.epoch_fn is not None else self.passes
            g = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(self.epoch_size / n))])
        else:
            order = torch.arange(n).repeat(math.ceil(self.epoch_size / n))
        order = order[: self.epoch_size]
        share = len(order) // self.world_size
        return order[self.rank * share : (self.rank + 1) * share].to(self.labels.device)

    def __len__(self) -> int:
        return math.ceil((self.epoch_size // self.world_size) / self.batch_size)

    def __iter__(self):
        order = self._indices()
        self.passes += 1  # next pass, next permutation; reproducible from the seed
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.images[idx], self.labels[idx]


def random_affine(
    x: torch.Tensor,
    max_shift: float,
    max_rotate: float = 10.0,
    max_scale: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random shift/rotation/scale of a whole batch (N, 1, H, W) in one grid_sample."""
    n, device = x.shape[0], x.device
    rand = torch.rand(n, 4, generator=generator, device="cpu").to(device) * 2 - 1
    angle = rand[:, 0] * math.radians(max_rotate)
    scale = 1 + rand[:, 1] * max_scale
    shift = rand[:, 2:] * (2 * max_shift / x.shape[-1])  # pixels -> normalised coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


class MNISTDataModule(L.LightningDataModule):
    def __init__(
        self,
        root: str = "data/mnist",
        val_size: int = 5000,
        split_seed: int = 0,
        train_subset: int | None = None,
        epoch_size: int | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 2000,
        augment: bool = False,
        max_shift: float = 2.0,
        seed: int = 0,
        source: str = "auto",
        local_dir: str | None = None,
    ):
        super().__init__()
        self.root, self.source, self.local_dir = root, source, local_dir
        self.val_size, self.split_seed, self.train_subset = val_size, split_seed, train_subset
        self.epoch_size = epoch_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.augment, self.max_shift, self.seed = augment, max_shift, seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_config(cls, cfg) -> MNISTDataModule:
        d = cfg.data
        return cls(
            root=d.root,
            val_size=d.val_size,
            split_seed=d.split_seed,
            train_subset=d.train_subset,
            epoch_size=d.get("epoch_size"),
            batch_size=d.batch_size,
            eval_batch_size=d.eval_batch_size,
            augment=d.augment,
            max_shift=d.max_shift,
            seed=cfg.seed,
            source=d.source,
            local_dir=d.local_dir,
        )

    def prepare_data(self) -> None:
        # Lightning calls this on one process only; the DVC data stage normally did it already.
        if not is_prepared(self.root):
            prepare(self.root, self.source, self.local_dir)

    def _device(self) -> torch.device:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        device = self._device()
        if stage == "test":
            # Only an explicit test stage reads the test split: training and validation never
            # see it, so nothing chosen during training (checkpoints, sweeps) can depend on it.
            if "test" not in self.splits:
                test_images, test_labels = load_split(self.root, "test")
                self.splits["test"] = (test_images.to(device), test_labels.to(device))
            return
        if "train" in self.splits:
            return
        images, labels = load_split(self.root, "train")
        # A fixed, seeded split: the validation set never changes with the training seed.
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = order[: self.val_size], order[self.val_size :]
        if self.train_subset:
            train_idx = train_idx[: self.train_subset]
        self.splits["train"] = (images[train_idx].to(device), labels[train_idx].to(device))
        self.splits["val"] = (images[val_idx].to(device), labels[val_idx].to(device))

    def _batches(self, split: str, batch_size: int, shuffle: bool, epoch_size: int | None = None) -> TensorBatches:
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        images, labels = self.splits[split]
        epoch_fn = (lambda: trainer.current_epoch) if trainer is not None else None
        return TensorBatches(
            images,
            labels,
            batch_size,
            shuffle,
            seed=self.seed,
            rank=rank,
            world_size=world,
            epoch_fn=epoch_fn,
            epoch_size=epoch_size,
        )

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", self.batch_size, shuffle=True, epoch_size=self.epoch_size)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        x = to_model_input(images)
        trainer = getattr(self, "trainer", None)
        if self.augment and trainer is not None and trainer.training:
            x = random_affine(x, self.max_shift)
        return x, labels
