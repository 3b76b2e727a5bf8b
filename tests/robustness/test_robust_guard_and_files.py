"""The catastrophic-overfitting guard in a real Lightning fit on real MNIST, the official
MNIST-C file layout, and the remedy command's answer to bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from pipeline.training.robust_guard import CatastrophicOverfittingGuard


@pytest.fixture(scope="module")
def trained_smallconv(mnist_root):
    """Wong's net after 300 plain Adam steps on 6,000 real digits (about 95 % clean)."""
    from pipeline.data.mnist import load_split
    from pipeline.nn.models import SmallConv

    torch.manual_seed(0)
    images, labels = load_split(mnist_root, "train")
    x, y = images[10_000:16_000].unsqueeze(1).float().div(255), labels[10_000:16_000]
    model = SmallConv()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _step in range(300):
        i = torch.randint(0, len(y), (100,))
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.slow
def test_guard_rolls_back_and_stops_when_pgd_accuracy_collapses(mnist_root, trained_smallconv, tmp_path):
    import lightning as L

    from pipeline.training.callbacks import EpochHistory
    from pipeline.training.datamodule import MNISTDataModule
    from pipeline.training.module import Classifier

    module = Classifier(
        {"name": "smallconv", "arch": "smallconv", "channels": [16, 32], "hidden": 100},
        {"name": "sgd", "lr": 1e-9, "scheduler": "none"},
    )
    module.net.load_state_dict(trained_smallconv.state_dict())
    before = {k: v.clone() for k, v in module.net.state_dict().items()}

    class Collapse(L.Callback):
        """Robustness breaks after the first epoch's validation (what catastrophic overfitting does)."""

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                with torch.no_grad():
                    pl_module.net.net[-1].weight.zero_()

    guard = CatastrophicOverfittingGuard(eps=0.02, steps=5, images=200, collapse=0.2)
    datamodule = MNISTDataModule(root=str(mnist_root), train_subset=200, batch_size=100, eval_batch_size=1000)
    trainer = L.Trainer(
        max_epochs=5,
        limit_train_batches=1,
        limit_val_batches=1,
        callbacks=[guard, Collapse(), EpochHistory(tmp_path / "history.csv")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule)

    assert guard.history[0] > 0.8  # robust at this small eps before the collapse
    assert guard.history[1] < guard.history[0] - 0.2
    assert guard.collapsed_at == 1 and guard.best_epoch == 0
    assert len(guard.history) == 2 and trainer.current_epoch == 2  # stopped after the collapsed epoch, not at 5
    after = module.net.state_dict()
    assert all(torch.allclose(after[k], before[k], atol=1e-6) for k in before)  # epoch-1 weights are back
    assert trainer.callback_metrics["val/pgd_acc"] == pytest.approx(guard.history[1])
    # Every epoch's guard measure lands in the history (and so in the MLflow run) beside val/acc.
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["val/pgd_acc"]) for r in rows] == pytest.approx(guard.history)


def _mnist_c_folder(root, corruptions: dict[str, tuple[np.ndarray, np.ndarray]]):
    for name, (images, labels) in corruptions.items():
        (root / name).mkdir(parents=True)
        np.save(root / name / "test_images.npy", images)
        np.save(root / name / "test_labels.npy", labels)
    return root


@pytest.mark.slow
def test_official_mnist_c_files_are_evaluated_as_they_are(mnist_root, trained_smallconv, tmp_path):
    from pipeline.data.mnist import load_split
    from pipeline.robustness.measures import official_corruption_table

    images, labels = load_split(mnist_root, "test")
    digits, truth = images[:300].numpy()[..., None], labels[:300].numpy().astype(np.uint8)
    folder = _mnist_c_folder(
        tmp_path / "mnist_c",
        {
            "shot_noise": (digits, truth),  # the clean digits under a corruption's name
            "fog": (np.zeros_like(digits), truth),  # all black
        },
    )
    table = official_corruption_table(trained_smallconv, str(folder), ["shot_noise", "fog"], 128, "cpu")
    rows = {row["corruption"]: row["accuracy"] for row in table}
    with torch.no_grad():
        x = torch.from_numpy(digits[..., 0]).unsqueeze(1).float().div(255)
        clean = float((trained_smallconv(x).argmax(1) == labels[:300]).float().mean())
        black_class = int(trained_smallconv(torch.zeros(1, 1, 28, 28)).argmax())
    assert rows["shot_noise"] == pytest.approx(clean) and clean > 0.85
    assert rows["fog"] == pytest.approx(float((labels[:300] == black_class).float().mean()))


def test_mnist_c_dir_errors_name_the_problem(tmp_path):
    from pipeline.config.settings import ConfigError, compose, validate
    from pipeline.robustness.mnist_c_files import MnistCError, load_corruption

    folder = _mnist_c_folder(
        tmp_path / "mnist_c",
        {
            "fog": (np.zeros((4, 28, 28, 1), np.uint8), np.zeros(4, np.uint8)),
            "rotate": (np.zeros((4, 28, 28), np.float32), np.zeros(4, np.uint8)),  # wrong layout
        },
    )
    cfg = compose([f"robustness.mnist_c_dir={folder}", "robustness.corruptions=[fog,zigzag]"])
    with pytest.raises(ConfigError, match="zigzag"):
        validate(cfg)
    validate(compose([f"robustness.mnist_c_dir={folder}", "robustness.corruptions=[fog]"]))
    with pytest.raises(ConfigError, match="not a folder"):
        validate(compose([f"robustness.mnist_c_dir={tmp_path / 'nowhere'}"]))
    with pytest.raises(MnistCError, match=r"uint8 \(N, 28, 28, 1\)"):
        load_corruption(folder, "rotate")


def _remedy(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.remedy", *args], capture_output=True, text=True, timeout=120
    )


def test_remedy_refuses_bad_input_cleanly(tmp_path):
    done = _remedy(str(tmp_path), "pgd")
    assert done.returncode == 2
    assert "has no run.json" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "run.json").write_text("{}")
    done = _remedy(str(tmp_path), "pgd", "--eps", "3")
    assert done.returncode == 2 and "--eps 3.0 is outside [0, 1]" in done.stderr
    assert not (tmp_path / "remedy").exists()  # nothing half-written
