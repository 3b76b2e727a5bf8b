"""Training-loop overhead: our Lightning training vs a hand-written PyTorch loop doing the same work.

ours:  Classifier + MNISTDataModule + the Trainer from pipeline.stages.train.build_trainer, i.e. with our
       callbacks (ModelCheckpoint, per-epoch history CSV + MLflow logging into a throwaway SQLite
       store in a temp dir, epoch seeding), exactly as `fit` builds it.
plain: the same model class and initial weights, the datamodule's own TensorBatches (same order), the
       same uint8 -> float conversion, Adam with the configured lr, the same dropout seeding per epoch,
       the usual on-device running loss/accuracy, and a validation pass (loss, accuracy) every epoch.
floor: (MLP cases) the plain loop's work written as the smallest LightningModule, fitted by a bare
       Trainer: no callbacks but the clock, no metrics objects, no logging, no checkpoints. floor/plain
       is what Lightning's own loop costs, a floor no configuration of ours goes below; ours/floor is
       what the pipeline adds on top of it.

Reported: median seconds per epoch over all epochs but the first of each run (warm-up), runs
interleaved ours/plain. Both must end with the same validation accuracy (same weights, same batches).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import data_root, median, row

# (name, overrides, target on ours/plain); the CNN runs on a subset with a validation set scaled
# alike (12,800/55,000 of the steps, 1,200/5,000 of the validation), so the mix of training and
# validation time is that of a full epoch.
CASES = [
    ("MLP batch 512", ["data.batch_size=512"], 1.10),
    ("MLP batch 128", ["data.batch_size=128"], 1.15),
    ("CNN batch 128", ["model=cnn", "data.batch_size=128", "data.train_subset=12800", "data.val_size=1200"], 1.05),
]
QUICK = {"MLP": ["data.train_subset=2048", "data.val_size=1000"], "CNN": ["data.train_subset=256", "data.val_size=500"]}
ACC_TOLERANCE = 0.002  # same weights and batches: the accuracies should agree to float noise


def compose_cfg(overrides: list[str], tmp: Path, epochs: int):
    from pipeline.config.settings import compose, validate

    cfg = compose(
        [
            *overrides,
            f"run_dir={tmp}",
            f"data.root={data_root()}",
            f"trainer.max_epochs={epochs}",
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
            "tracking.log_model=false",
        ]
    )
    validate(cfg)
    return cfg


def _clock():
    """A callback: seconds of each epoch, from one epoch start to the next (so every callback's
    end-of-epoch work, MLflow logging and checkpointing included, counts)."""
    import lightning as L

    class EpochClock(L.Callback):
        def __init__(self):
            self.starts: list[float] = []
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module):
            now = time.perf_counter()
            if self.starts:
                self.seconds.append(now - self.starts[-1])
            self.starts.append(now)

        def on_train_end(self, trainer, pl_module):
            self.seconds.append(time.perf_counter() - self.starts[-1])

    return EpochClock()


def initial_state(cfg) -> dict:
    """The weights both loops start from: a Classifier's model, built as training builds it."""
    from pipeline.training.module import Classifier

    torch.manual_seed(cfg.seed)
    net = Classifier.from_config(cfg).net
    return {k: v.clone() for k, v in net.state_dict().items()}


def run_ours(cfg, init_state: dict, run_dir: Path, extra_callbacks=()) -> dict:
    from benchmarks.common import train_like_pipeline

    clock = _clock()
    trainer, module = train_like_pipeline(cfg, run_dir, [clock, *extra_callbacks], init_state, "benchmarks/loop.py")
    return {
        "epoch_s": clock.seconds,
        "val_acc": float(trainer.callback_metrics["val/acc"]),
        "state": module.net.state_dict(),
        "steps": trainer.num_training_batches,
    }


def run_plain(cfg, init_state: dict) -> dict:
    from pipeline.nn.builders import build_model
    from pipeline.training.datamodule import MNISTDataModule

    assert cfg.optim.name == "adam" and cfg.optim.scheduler == "none", "the plain loop implements Adam only"
    assert not cfg.data.augment and cfg.adversarial.method == "none"
    torch.use_deterministic_algorithms(cfg.trainer.deterministic)  # as the Trainer sets it
    model = build_model(cfg.model)
    if cfg.model.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    model.load_state_dict(init_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    dm = MNISTDataModule.from_config(cfg)
    dm.setup("fit")
    # The datamodule's own TensorBatches: without a trainer, pass k over them uses the permutation
    # of epoch k, exactly the batches the trainer's epoch k gets.
    train, val = dm.train_dataloader(), dm.val_dataloader()
    seconds: list[float] = []
    for epoch in range(cfg.trainer.max_epochs):
        start = time.perf_counter()
        torch.manual_seed(cfg.seed + epoch)  # the same dropout masks as our epoch seeding
        model.train()
        loss_sum, correct, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
        for batch in train:
            x, labels = dm.on_after_batch_transfer(batch, 0)  # uint8 -> float/255, as in training
            logits = model(x)
            loss = F.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(labels)
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += len(labels)
        model.eval()
        v_loss, v_correct, v_seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
        with torch.inference_mode():
            for batch in val:
                x, labels = dm.on_after_batch_transfer(batch, 0)
                logits = model(x)
                v_loss += F.cross_entropy(logits, labels, reduction="sum")
                v_correct += (logits.argmax(1) == labels).sum()
                v_seen += len(labels)
        # The epoch's summary, read back once per epoch (as printing or logging it would).
        summary = {
            "train/loss": loss_sum.item() / seen,
            "train/acc": correct.item() / seen,
            "val/loss": v_loss.item() / v_seen,
            "val/acc": v_correct.item() / v_seen,
        }
        seconds.append(time.perf_counter() - start)
    return {"epoch_s": seconds, "val_acc": summary["val/acc"], "state": model.state_dict(), "steps": len(train)}


def run_floor(cfg, init_state: dict) -> dict:
    """The plain loop's work inside Lightning's loop, with nothing of ours around it (see the module doc)."""
    import lightning as L

    from pipeline.nn.builders import build_model
    from pipeline.training.datamodule import MNISTDataModule

    class Minimal(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_model(cfg.model)
            self.net.load_state_dict(init_state)

        def on_train_epoch_start(self):
            torch.manual_seed(cfg.seed + self.current_epoch)  # the plain loop's dropout seeding
            self.sums = torch.zeros(2)

        def training_step(self, batch, batch_idx):
            x, labels = batch
            logits = self.net(x)
            loss = F.cross_entropy(logits, labels)
            self.sums += torch.stack([loss.detach() * len(labels), (logits.detach().argmax(1) == labels).sum()])
            return loss

        def on_validation_epoch_start(self):
            self.v_sums = torch.zeros(3)

        def validation_step(self, batch, batch_idx):
            x, labels = batch
            logits = self.net(x)
            loss = F.cross_entropy(logits, labels, reduction="sum")
            self.v_sums += torch.stack([loss, (logits.argmax(1) == labels).sum(), torch.tensor(len(labels))])

        def on_validation_epoch_end(self):
            self.val_acc = (self.v_sums[1] / self.v_sums[2]).item()  # one read per epoch, as the plain loop

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)

    clock = _clock()
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        accelerator="cpu",
        deterministic=cfg.trainer.deterministic,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[clock],
    )
    module = Minimal()
    trainer.fit(module, datamodule=MNISTDataModule.from_config(cfg))
    return {
        "epoch_s": clock.seconds,
        "val_acc": module.val_acc,
        "state": module.net.state_dict(),
        "steps": trainer.num_training_batches,
    }


def _max_weight_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _versus_plain(last: dict, samples: dict, side: str, case: str, note: str, target: float | None = None) -> dict:
    """The row of one side (ours, the floor) against the plain loop, with the checks that both trained
    the same weights to the same accuracy."""
    a, b = last[side], last["plain"]
    return row(
        "loop",
        case,
        median(samples[side]),
        median(samples["plain"]),
        "s",
        ("<=", target, "ratio") if target is not None else None,
        note=f"{note}; val acc {a['val_acc']:.4f} vs {b['val_acc']:.4f}",
        same_accuracy=abs(a["val_acc"] - b["val_acc"]) <= ACC_TOLERANCE,
        val_acc_ours=a["val_acc"],
        val_acc_plain=b["val_acc"],
        max_weight_diff=_max_weight_diff(a["state"], b["state"]),
        samples_ours=samples[side],
        samples_plain=samples["plain"],
    )


def _step_reads(counts: dict):
    """A callback: host reads from one training batch start to the next, i.e. per step."""
    import lightning as L

    class StepReads(L.Callback):
        def __init__(self):
            self.marks: list[int] = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.marks = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.marks.append(counts["n"])

    return StepReads()


@contextlib.contextmanager
def count_host_reads():
    """Count tensor -> Python reads (.item(), bool(), float(), int(), .tolist()); on a GPU each is a sync."""
    counts = {"n": 0}
    names = ("item", "__bool__", "__float__", "__int__", "tolist")
    saved = {name: getattr(torch.Tensor, name) for name in names}

    def counting(original):
        def wrapper(self, *args, **kwargs):
            # Not the optimisers' own step counters: CPU scalars even when training on a GPU, no sync.
            if not sys._getframe(1).f_globals.get("__name__", "").startswith("torch.optim"):
                counts["n"] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name, original in saved.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        yield counts
    finally:
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    epochs = 2 if quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        tmp = Path(tmp)
        for name, overrides, target in CASES[1:] if quick else CASES:
            if quick:
                overrides = [o for o in overrides if not o.startswith(("data.train_subset", "data.val_size"))]
                overrides += QUICK[name.split()[0]]
            cfg = compose_cfg(overrides, tmp, epochs)
            init = initial_state(cfg)
            with_floor = name.startswith("MLP")
            samples: dict[str, list[float]] = {"ours": [], "floor": [], "plain": []}
            last = {}
            for i in range(repeats):  # interleaved: ours, (floor,) plain, ours, (floor,) plain, ...
                last["ours"] = run_ours(cfg, init, tmp / f"{name.replace(' ', '_')}_{i}")
                if with_floor:
                    last["floor"] = run_floor(cfg, init)
                last["plain"] = run_plain(cfg, init)
                for side, result in last.items():
                    samples[side] += result["epoch_s"][1:]  # the first epoch is warm-up
            rows.append(
                _versus_plain(last, samples, "ours", f"{name}, s/epoch", f"{last['ours']['steps']} steps/epoch", target)
            )
            if with_floor:
                ratio = median(samples["ours"]) / median(samples["floor"])
                rows.append(
                    _versus_plain(
                        last,
                        samples,
                        "floor",
                        f"{name}, s/epoch, Lightning's floor (a minimal LightningModule, bare Trainer) vs plain",
                        f"ours / floor {ratio:.2f}x: what the pipeline adds to Lightning's loop",
                    )
                )
        # Not timed: how often our loop reads a value back to the host during training steps (on a
        # GPU each read is a sync). module.py logs with on_step=False; the divergence check reads
        # the loss every log_every_n_steps steps, so expect about 1/50.
        cfg = compose_cfg(QUICK["MLP"], tmp, 1)
        with count_host_reads() as reads:
            steps = _step_reads(reads)
            run_ours(cfg, initial_state(cfg), tmp / "host_reads", [steps])
        per_step = [b - a for a, b in zip(steps.marks, steps.marks[1:], strict=False)]
        mlp128 = next(r for r in rows if r["case"] == "MLP batch 128, s/epoch")
        mlp128["checks"]["host_reads_per_step"] = sum(per_step) / len(per_step)
    return rows
