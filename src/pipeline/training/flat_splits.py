"""The networks' split as flat arrays, for the methods that take a matrix (scikit-learn, the depth claim)."""

from __future__ import annotations

from omegaconf import DictConfig


def flat_splits(cfg: DictConfig):
    """(train, val, test) as float32 (N, 784) NumPy arrays in [0, 1] with int labels: the split the
    networks train on (data.val_size, data.split_seed), and the 10,000 test images."""
    from pipeline.data.mnist import load_split
    from pipeline.training.datamodule import MNISTDataModule

    data = MNISTDataModule.from_config(cfg)
    data.prepare_data()
    data.setup("fit")
    test = load_split(cfg.data.root, "test")

    def flat(images, labels):
        return images.reshape(len(images), -1).float().div(255).numpy(), labels.numpy()

    return flat(*data.splits["train"]), flat(*data.splits["val"]), flat(*test)
