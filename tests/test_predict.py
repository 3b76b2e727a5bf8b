"""`python -m pipeline.stages.predict`: test-set digits saved as PNG files are classified as the model does
in memory and (mostly) correctly, from a checkpoint and from the registry's champion; bad input is
refused with a clear message and exit code 2."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import run_module, run_module_noting_imports
from PIL import Image

N = 100
LINE = re.compile(r"^(?P<path>.+): (?P<cls>\d) \(probability (?P<p>[0-9.]+)\)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_root):
    """A good model, then a worse one, in one store: the champion must stay with the first."""
    tmp = tmp_path_factory.mktemp("predict")
    uri = f"sqlite:///{tmp}/mlflow.db"
    for name, subset, epochs in (("good", 10000, 2), ("weak", 500, 1)):
        out = run_module(
            "pipeline.stages.train",
            f"data.train_subset={subset}",
            f"trainer.max_epochs={epochs}",
            f"run_dir={tmp / name}",
            f"tracking.uri={uri}",
            f"data.root={mnist_root}",
            "tracking.register=true",  # an ad-hoc run registers only when asked
            cwd=tmp,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "mnist-mlp@champion: none -> version 1" in out.stdout or (
            "mnist-mlp@champion stays version 1" in out.stdout  # the weak one does not take the alias
        )
    return tmp, uri


@pytest.fixture(scope="module")
def digits(trained, mnist_root):
    """The first N test images as PNG files in several forms, and what the model says in memory."""
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.nn.builders import load_checkpoint
    from pipeline.stages.evaluate import predict_logits

    tmp, _ = trained
    images, labels = load_split(mnist_root, "test")
    images, labels = images[:N], labels[:N]
    folder = tmp / "digits"
    folder.mkdir()
    for i, img in enumerate(images.numpy()):
        name = folder / f"{i:03d}.png"
        if i % 3 == 0:  # as MNIST stores it: 8-bit grayscale, light ink on black
            Image.fromarray(img).save(name)
        elif i % 3 == 1:  # pen on paper, in colour: must be inverted back
            Image.fromarray(255 - img).convert("RGB").save(name)
        else:  # ink on a transparent canvas (alpha = ink), composited over white then inverted
            rgba = np.zeros((28, 28, 4), np.uint8)
            rgba[..., 3] = img
            Image.fromarray(rgba, "RGBA").save(name)
    (folder / "notes.txt").write_text("not an image: ignored inside a folder")
    model = load_checkpoint(tmp / "good" / "checkpoints" / "best.ckpt")
    probs = torch.softmax(predict_logits(model, images, 1000), 1)
    return folder, labels.numpy(), probs.argmax(1).numpy(), probs.max(1).values.numpy()


def _parse(stdout: str) -> dict[str, tuple[int, float]]:
    found = {}
    for line in stdout.splitlines():
        m = LINE.match(line)
        if m:
            found[m["path"].rsplit("/", 1)[-1]] = (int(m["cls"]), float(m["p"]))
    return found


def _check(stdout: str, labels, expected, confidence) -> None:
    got = _parse(stdout)
    assert sorted(got) == [f"{i:03d}.png" for i in range(N)]  # every image, notes.txt skipped
    classes = np.array([got[f"{i:03d}.png"][0] for i in range(N)])
    probs = np.array([got[f"{i:03d}.png"][1] for i in range(N)])
    assert (classes == expected).all()  # exactly what the model says about the original tensors
    assert np.abs(probs - confidence).max() <= 0.0015  # printed with 3 decimals
    assert (classes == labels).mean() >= 0.9  # and it is mostly right


@pytest.mark.slow
def test_checkpoint_classifies_test_digits_in_every_form(trained, digits):
    tmp, _ = trained
    folder, labels, expected, confidence = digits
    out = run_module(
        "pipeline.stages.predict", str(folder), "--checkpoint", str(tmp / "good/checkpoints/best.ckpt"), cwd=tmp
    )
    assert out.returncode == 0, out.stderr[-2000:]
    _check(out.stdout, labels, expected, confidence)


@pytest.mark.slow
def test_registered_champion_classifies_the_same(trained, digits):
    tmp, uri = trained
    folder, labels, expected, confidence = digits
    out = run_module(
        "pipeline.stages.predict", str(folder), "--model", "models:/mnist-mlp@champion", "--tracking-uri", uri, cwd=tmp
    )
    assert out.returncode == 0, out.stderr[-2000:]
    _check(out.stdout, labels, expected, confidence)
    # the default model is the champion too, and a single file works; --top adds runners-up
    one = folder / "000.png"
    out = run_module("pipeline.stages.predict", str(one), "--top", "3", cwd=tmp, env={"MLFLOW_TRACKING_URI": uri})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f"{one}: {expected[0]} (probability ") and out.stdout.count("then") == 2


@pytest.mark.slow
def test_fit_handles_a_large_dark_on_light_scan(trained, digits, mnist_root):
    from pipeline.data.mnist import load_split

    tmp, _ = trained
    _, _, expected, confidence = digits
    images, _ = load_split(mnist_root, "test")
    sure = [i for i in range(N) if confidence[i] > 0.99][:5]
    assert len(sure) == 5
    scans = []
    for i in sure:  # 4x larger, on white paper with a wide margin, as a phone photo crop might be
        page = np.full((200, 160), 255, np.uint8)
        page[30:142, 20:132] = 255 - np.kron(images[i].numpy(), np.ones((4, 4), np.uint8))
        scans.append(tmp / f"scan{i}.png")
        Image.fromarray(page).save(scans[-1])
    ckpt = str(tmp / "good/checkpoints/best.ckpt")
    refused = run_module("pipeline.stages.predict", str(scans[0]), "--checkpoint", ckpt, cwd=tmp)
    assert refused.returncode == 2 and "is 160x200 pixels; expected 28x28" in refused.stderr
    assert "--fit" in refused.stderr
    out = run_module("pipeline.stages.predict", *map(str, scans), "--fit", "--checkpoint", ckpt, cwd=tmp)
    assert out.returncode == 0, out.stderr[-2000:]
    got = _parse(out.stdout)
    assert [got[f"scan{i}.png"][0] for i in sure] == [int(expected[i]) for i in sure]


@pytest.mark.slow
def test_bad_input_is_refused_clearly_before_loading_a_model(tmp_path, trained):
    _, uri = trained
    (tmp_path / "letter.png").write_text("Dear reader, this is not a picture.")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((28, 28), np.uint16) + 300).save(tmp_path / "deep.png")  # 16-bit grayscale
    Image.fromarray(np.zeros((28, 28), np.uint8)).convert("CMYK").save(tmp_path / "print.jpg")
    (tmp_path / "empty").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok.png")
    cases = [
        ([str(tmp_path / "letter.png")], "letter.png is not an image Pillow can read"),
        ([str(tmp_path / "big.png")], "big.png is 32x32 pixels; expected 28x28"),
        ([str(tmp_path / "deep.png")], "image mode I;16 is not supported"),
        ([str(tmp_path / "print.jpg")], "image mode CMYK is not supported"),
        ([str(tmp_path / "missing.png")], "missing.png does not exist"),
        ([str(tmp_path / "empty")], "holds no images"),
        ([str(tmp_path / "ok.png"), "--checkpoint", str(tmp_path / "letter.png")], "is not a training checkpoint"),
        (
            [str(tmp_path / "ok.png"), "--model", "models:/mnist-mlp@nonexistent", "--tracking-uri", uri],
            "cannot load models:/mnist-mlp@nonexistent",
        ),
    ]
    for args, message in cases:
        out, imported = run_module_noting_imports("pipeline.stages.predict", *args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stdout, out.stderr[-2000:])
        assert message in out.stderr and "Traceback" not in out.stderr, (message, out.stderr[-2000:])
        if "--model" not in args and "--checkpoint" not in args:
            assert not imported & {"torch", "mlflow"}, (args, imported)  # refused before either is loaded


def test_help_answers_without_loading_torch_or_mlflow(tmp_path):
    out, imported = run_module_noting_imports("pipeline.stages.predict", "--help", cwd=tmp_path)
    assert out.returncode == 0 and "--checkpoint" in out.stdout and "28x28" in out.stdout
    assert not imported, imported
