"""The baseline a training command is measured against: a bare PyTorch script.

    python benchmarks/bare_train.py --data data/mnist --epochs 8

The seed MLP (784-128-64-10, ReLU), Adam 1e-3, batches of 128 from the same in-memory uint8
tensors the pipeline trains on, and the test-set accuracy after every epoch. No framework, no
tracking, no files: what a person would write by hand. Prints one JSON line with the seconds
spent in the loop (training and evaluation), so the caller can separate imports and set-up.

`--import-stack` first imports what any command built on the pipeline's libraries must import
(Lightning, MLflow with its SQLite store, Hydra) and uses none of it. `--lightning-loop` also runs
the same steps through Lightning's own loop: the smallest LightningModule under a bare Trainer (no
callbacks, logger, checkpoints, progress bar or metrics objects). Together they are the stack's
floor: what no Lightning + MLflow + Hydra command can go under, however little it adds.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, required=True, help="a prepared data/mnist folder")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int, default=55_000, help="the pipeline trains on 55k, validates on 5k")
    p.add_argument("--import-stack", action="store_true", help="import lightning, mlflow's store and hydra first")
    p.add_argument("--lightning-loop", action="store_true", help="train through a bare Lightning Trainer")
    args = p.parse_args()
    if args.import_stack:
        nvml_check = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
        import hydra  # noqa: F401
        import lightning  # noqa: F401
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

        # Importing Lightning sets this, which on a machine without an NVIDIA driver makes every
        # optimiser step try to load NVML; the floor is the imports' cost, so the loop runs as before.
        if nvml_check is None:
            os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)

    torch.manual_seed(42)
    train = torch.load(args.data / "train.pt", weights_only=True)
    test = torch.load(args.data / "test.pt", weights_only=True)
    x, y = train["images"][: args.train_size], train["labels"][: args.train_size]
    x_test, y_test = test["images"].float().div(255).view(-1, 784), test["labels"]
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    started, accuracies = time.perf_counter(), []
    if args.lightning_loop:
        _lightning_loop(model, optimizer, x, y, x_test, y_test, args, accuracies)
        print(json.dumps({"loop_s": time.perf_counter() - started, "test_acc": accuracies}), flush=True)
        return
    for _ in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(y)).split(args.batch_size):
            loss = F.cross_entropy(model(x[idx].float().div(255).view(-1, 784)), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracies.append(float((model(x_test).argmax(1) == y_test).double().mean()))
    print(json.dumps({"loop_s": time.perf_counter() - started, "test_acc": accuracies}), flush=True)


def _lightning_loop(model, optimizer, x, y, x_test, y_test, args, accuracies: list[float]) -> None:
    """The same steps, batches and per-epoch test accuracy through Lightning's loop and nothing else."""
    import lightning as L

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            return F.cross_entropy(self.net(xb.float().div(255).view(-1, 784)), yb)

        def configure_optimizers(self):
            return optimizer

        def on_train_epoch_end(self):
            self.net.eval()
            with torch.no_grad():
                accuracies.append(float((self.net(x_test).argmax(1) == y_test).double().mean()))
            self.net.train()

    class Batches:  # a fresh shuffled order each epoch, as the plain loop draws it
        def __iter__(self):
            return ((x[idx], y[idx]) for idx in torch.randperm(len(y)).split(args.batch_size))

        def __len__(self):
            return -(-len(y) // args.batch_size)

    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(Bare(), train_dataloaders=Batches())


if __name__ == "__main__":
    main()
