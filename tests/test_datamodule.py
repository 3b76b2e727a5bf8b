import torch

from pipeline.training.datamodule import MNISTDataModule, TensorBatches, random_affine


def _batches(n=103, batch=10, **kw):
    images = torch.arange(n, dtype=torch.uint8).repeat_interleave(4).reshape(n, 2, 2)
    return TensorBatches(images, torch.arange(n), batch, **kw)


def test_an_epoch_visits_every_example_once_and_reshuffles():
    loader = _batches(shuffle=True, seed=3)
    first = torch.cat([y for _, y in loader])
    second = torch.cat([y for _, y in loader])
    assert sorted(first.tolist()) == list(range(103)) == sorted(second.tolist())
    assert not torch.equal(first, second)
    assert len(loader) == 11 == len(list(loader))


def test_shuffling_is_reproducible_from_the_seed():
    a, b = _batches(shuffle=True, seed=7), _batches(shuffle=True, seed=7)
    assert all(torch.equal(ya, yb) for (_, ya), (_, yb) in zip(a, b, strict=False))


def test_ranks_get_equal_disjoint_shares():
    shares = [torch.cat([y for _, y in _batches(shuffle=True, seed=1, rank=r, world_size=2)]) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 51
    assert not set(shares[0].tolist()) & set(shares[1].tolist())


def test_images_and_labels_stay_paired():
    for images, labels in _batches(shuffle=True, seed=0):
        assert torch.equal(images[:, 0, 0].long(), labels)


def test_random_affine_keeps_shape_and_range_and_moves_pixels():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    torch.manual_seed(0)
    y = random_affine(x, max_shift=3)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(y, x)


def test_datamodule_splits_are_fixed_and_disjoint(mnist_root):
    dm = MNISTDataModule(root=str(mnist_root), val_size=5000, split_seed=0, train_subset=1000, seed=1)
    dm.setup("fit")
    assert len(dm.splits["train"][1]) == 1000 and len(dm.splits["val"][1]) == 5000
    assert "test" not in dm.splits  # fitting never loads the test split
    dm.setup("test")
    assert len(dm.splits["test"][1]) == 10000
    dm2 = MNISTDataModule(root=str(mnist_root), val_size=5000, split_seed=0, seed=99)
    dm2.setup("fit")
    assert torch.equal(dm.splits["val"][0], dm2.splits["val"][0])  # the training seed does not move it
    images, labels = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (128, 28, 28)
    x, _y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.dtype == torch.float32 and x.shape == (128, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
