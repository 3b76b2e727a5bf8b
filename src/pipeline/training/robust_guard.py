"""A guard against catastrophic overfitting in fast (FGSM) adversarial training.

FGSM training can, within a single epoch, learn to defeat FGSM alone: clean and FGSM
accuracy keep rising while PGD accuracy falls to near zero (Wong et al. 2020, Sec. 5).
Clean validation accuracy cannot see this, so the guard attacks a fixed batch of
held-out validation images with PGD after every epoch. It logs that accuracy as
`val/pgd_acc` (the checkpoint then chooses by it), keeps the weights of the most
robust epoch, and when robustness collapses it puts those weights back and stops.
"""

from __future__ import annotations

import copy

import lightning as L
import torch

from pipeline.common.metric_names import VAL_PGD_ACC

MONITOR = VAL_PGD_ACC


class CatastrophicOverfittingGuard(L.Callback):
    """PGD accuracy on `images` validation images each epoch; roll back and stop on a collapse.

    A collapse is a fall of more than `collapse` (absolute) below the best epoch so far.
    """

    def __init__(self, eps: float, steps: int = 10, images: int = 500, collapse: float = 0.2, seed: int = 0):
        if not 0 < collapse <= 1:
            raise ValueError(f"collapse must be in (0, 1], got {collapse!r}")
        self.eps, self.steps, self.images, self.collapse, self.seed = eps, steps, images, collapse, seed
        self.best_acc, self.best_state, self.best_epoch = -1.0, None, None
        self.history: list[float] = []
        self.collapsed_at: int | None = None

    def _held_out(self, trainer) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = trainer.datamodule.splits["val"]
        x, y = images[: self.images], labels[: self.images]
        if x.dtype == torch.uint8:  # the datamodule keeps uint8 digits; attacks want [0, 1] floats
            x = x.float().div(255)
        return (x.unsqueeze(1) if x.ndim == 3 else x), y

    def pgd_accuracy(self, trainer, module) -> float:
        from pipeline.robustness.attacks import pgd

        x, y = self._held_out(trainer)
        generator = torch.Generator().manual_seed(self.seed)  # the same starts every epoch
        x_adv = pgd(module.net, x, y, self.eps, steps=self.steps, generator=generator)
        with torch.no_grad():
            return float((module.net(x_adv).argmax(1) == y).float().mean())

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        acc = self.pgd_accuracy(trainer, pl_module)
        self.history.append(acc)
        pl_module.log(MONITOR, acc, prog_bar=True)
        if acc > self.best_acc:
            self.best_acc, self.best_epoch = acc, trainer.current_epoch
            self.best_state = copy.deepcopy(pl_module.net.state_dict())
        elif acc < self.best_acc - self.collapse:
            self.collapsed_at = trainer.current_epoch
            pl_module.net.load_state_dict(self.best_state)
            trainer.should_stop = True
            assert self.best_epoch is not None  # a collapse is measured from a best epoch
            print(
                f"[train] catastrophic overfitting: PGD accuracy on {self.images} validation images fell to "
                f"{acc:.3f} at epoch {trainer.current_epoch + 1} (best {self.best_acc:.3f} at epoch "
                f"{self.best_epoch + 1}); rolled back to epoch {self.best_epoch + 1} and stopped",
                flush=True,
            )


def guard_from_config(cfg) -> CatastrophicOverfittingGuard | None:
    """The guard configured in `adversarial.guard` (null or absent: none)."""
    adversarial = cfg.get("adversarial") or {}
    g = adversarial.get("guard")
    if not g:
        return None
    return CatastrophicOverfittingGuard(
        eps=adversarial["eps"],
        steps=g.get("steps", 10),
        images=g.get("images", 500),
        collapse=g.get("collapse", 0.2),
        seed=cfg.get("seed", 0),
    )
