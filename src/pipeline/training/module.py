"""The LightningModule: cross-entropy, accuracy, optimiser and schedule around a plain model."""

from __future__ import annotations

from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from pipeline.nn.builders import build_model, build_optimizer, build_scheduler

# Training steps per point of the loss curve over steps (the mean of the window): 43 points an
# epoch of 430 steps, enough to fit a curve, and one device read per epoch, not per step.
LOSS_EVERY = 10


class Classifier(L.LightningModule):
    """Wraps a model built from `model_cfg`; hyperparameters are plain dicts so a
    checkpoint loads with torch.load(weights_only=True)."""

    def __init__(self, model_cfg: dict, optim_cfg: dict, adversarial_cfg: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_model(model_cfg)
        if model_cfg.get("channels_last"):
            # NHWC convolutions: faster CNN training steps on CPU (benchmarks/choices.py).
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optim_cfg = optim_cfg
        self.adversarial_cfg = adversarial_cfg or {"method": "none"}
        self._reset_training_sums()
        self._window_sum, self._window_steps = torch.zeros(()), 0
        self._step_losses: list[tuple[int, torch.Tensor]] = []  # (step, window mean), still on the device
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.diverged_step: int | None = None  # optim.on_divergence=stop: the step whose loss was not finite

    @classmethod
    def from_config(cls, cfg) -> Classifier:
        """From a composed config: its model, optim and adversarial sections, as plain dicts."""
        from omegaconf import OmegaConf

        return cls(
            *(
                cast(dict[str, Any], OmegaConf.to_container(cfg[k], resolve=True))
                for k in ("model", "optim", "adversarial")
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def adversarial_eps(self, batch_idx: int) -> float:
        """The training eps now: ramped linearly over `warmup_epochs` (an eps warm-up keeps
        multi-step adversarial training from stalling at chance early on), then constant."""
        cfg = self.adversarial_cfg
        warmup = cfg.get("warmup_epochs", 0) or 0
        if warmup <= 0 or self._trainer is None:
            return cfg["eps"]
        progress = (self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches)) / warmup
        return cfg["eps"] * min(1.0, progress)

    def adversarial_batch(self, x: torch.Tensor, y: torch.Tensor, batch_idx: int = 0) -> torch.Tensor:
        """Replace the batch by its adversarial version (adversarial training), if configured."""
        cfg = self.adversarial_cfg
        if cfg["method"] == "none":
            return x
        from pipeline.robustness.attacks import fgsm_random_start, pgd

        eps, steps = self.adversarial_eps(batch_idx), cfg.get("steps", 1)
        # A configured step size is relative to the full eps, so it shrinks with the warm-up.
        step_size = cfg.get("step_size") and cfg["step_size"] * eps / cfg["eps"]
        if cfg["method"] == "fgsm":
            return fgsm_random_start(self.net, x, y, eps, step_size=step_size or None)
        if cfg["method"] == "trades":
            from pipeline.robustness.trades import trades_perturb

            return trades_perturb(self.net, x, eps, steps=steps, step_size=step_size)
        return pgd(self.net, x, y, eps, steps=steps, step_size=step_size, random_start=True)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        x, y = batch
        x_adv = self.adversarial_batch(x, y, batch_idx)
        logits = self.net(x_adv)
        if self.adversarial_cfg["method"] == "trades":
            from pipeline.robustness.trades import trades_loss

            loss = trades_loss(self.net(x), logits, y, self.adversarial_cfg.get("beta", 6.0))
        else:
            loss = F.cross_entropy(logits, y, label_smoothing=self.optim_cfg.get("label_smoothing", 0.0))
        # A diverged run stops instead of producing a garbage model. Checked every
        # few steps, not every step: reading the value forces a device sync.
        every = self.trainer.log_every_n_steps  # type: ignore[attr-defined]  # set at run time, not declared
        if self.optim_cfg.get("on_divergence", "fail") == "stop":
            # Divergence is an outcome being measured (claim_techniques' 10x learning rates): checked
            # every step, the step is skipped, training ends, and the run keeps the step it diverged at.
            if not torch.isfinite(loss):
                self.diverged_step = self.global_step + 1
                self.trainer.should_stop = True
                self._log_training_epoch()
                return None
        elif batch_idx % every == 0 and not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at epoch {self.current_epoch + 1}, batch {batch_idx}: the run "
                f"diverged. Lower optim.lr (now {self.optim_cfg['lr']}) or change optim/model settings."
            )
        # Epoch-level metrics accumulate on the device (no sync per step) and reach self.log once,
        # on the epoch's last batch: a self.log call costs about 1 ms on a CPU, as much as a whole
        # MLP training step (benchmarks/loop.py).
        with torch.no_grad():
            self.train_loss_sum += loss.detach() * len(y)
            self.train_correct += (logits.detach().argmax(1) == y).sum()
            self._window_sum = self._window_sum.to(loss.device) + loss.detach()
        self.train_seen += len(y)
        self._window_steps += 1
        if self._window_steps == LOSS_EVERY:  # kept on the device: read once, at the epoch's end
            self._step_losses.append((self.global_step + 1, self._window_sum / LOSS_EVERY))
            self._window_sum, self._window_steps = torch.zeros((), device=loss.device), 0
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_training_epoch()
        return loss

    def on_train_epoch_start(self) -> None:
        self._reset_training_sums()

    def take_step_losses(self) -> list[tuple[int, float]]:
        """The loss curve's points since the last call, as (step, mean loss of the window): one device read."""
        if not self._step_losses:
            return []
        steps = [s for s, _ in self._step_losses]
        values = torch.stack([v for _, v in self._step_losses]).tolist()
        self._step_losses = []
        return list(zip(steps, values, strict=True))

    def _reset_training_sums(self) -> None:
        """The epoch's loss sum and correct predictions, kept on the device (no read per step) as two
        plain tensors: updating torchmetrics' two objects took 0.12 ms per step on a 2-core CPU, these
        two sums 0.02 ms (an MLP step at batch 128 is about 1.3 ms)."""
        self.train_loss_sum = torch.zeros((), device=self.device)
        self.train_correct = torch.zeros((), dtype=torch.long, device=self.device)
        self.train_seen = 0

    def _log_training_epoch(self) -> None:
        """train/loss and train/acc of the whole epoch, summed over every process (DDP) first."""
        sums = torch.stack(
            (
                self.train_loss_sum.float(),
                self.train_correct.float(),
                torch.tensor(float(self.train_seen), device=self.device),
            )
        )
        loss_sum, correct, seen = self.trainer.strategy.reduce(sums, reduce_op="sum")
        self.log("train/loss", loss_sum / seen, on_step=False, on_epoch=True, batch_size=1)
        self.log("train/acc", correct / seen, on_step=False, on_epoch=True, batch_size=1)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.val_acc.update(logits, y)
        self.log("val/loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.parameters(), self.optim_cfg)
        if self.optim_cfg.get("scheduler", "none") == "none":
            return optimizer
        steps = int(self.trainer.estimated_stepping_batches)
        if steps < 4:  # too short to schedule (smoke runs): one-cycle needs a step up and a step down
            return optimizer
        scheduler = build_scheduler(optimizer, self.optim_cfg, steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
