"""Validation chooses, the test split only reports: training never reads the test split."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_module
from omegaconf import OmegaConf

from pipeline.config.settings import compose


@pytest.mark.slow
def test_training_never_loads_the_test_split(mnist_root, tmp_path):
    # A data folder whose test split is unreadable: any read of it by training fails the run.
    root = tmp_path / "mnist"
    root.mkdir()
    for name in ("train.pt", "manifest.json"):
        os.symlink(mnist_root / name, root / name)
    (root / "test.pt").write_bytes(b"not a tensor file: training must never open it")
    cfg = compose(
        [
            f"data.root={root}",
            "data.train_subset=500",
            "data.batch_size=100",
            "trainer.max_epochs=1",
            f"run_dir={tmp_path / 'run'}",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            "tracking.log_model=false",
        ]
    )
    params = tmp_path / "params.yaml"
    params.write_text(OmegaConf.to_yaml(cfg))

    out = run_module("pipeline.stages.train", "--params", str(params), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ref = json.loads((tmp_path / "run" / "run.json").read_text())
    assert ref["state"] == "completed" and 0.1 < ref["val_best_acc"] <= 1.0
    # ...and the evaluation of the same model does read it (and fails on it), so the trap is real.
    out = run_module("pipeline.stages.evaluate", "--params", str(params), cwd=tmp_path)
    assert out.returncode != 0 and "test.pt" in out.stderr
