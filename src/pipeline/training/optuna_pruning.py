"""Lightning callback of a pruning Optuna sweep: `val/acc` to the trial each epoch, stop when pruned."""

from __future__ import annotations

import lightning as L

from pipeline.training.optuna_trial import TrialRef, TrialReporter

MONITOR = "val/acc"


class OptunaPruning(L.Callback):
    """Each epoch's validation accuracy goes to the job's trial (through the study's storage, so the
    job may run anywhere); when the study's pruner says so, training stops at the end of that epoch
    and `pruned_epoch` says which one. Under DDP rank 0 asks, and every rank stops alike."""

    def __init__(self, ref: TrialRef, monitor: str = MONITOR):
        self.ref, self.monitor = ref, monitor
        self.pruned_epoch: int | None = None
        self.reporter: TrialReporter | None = None

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1  # the step of MLflow's and history.csv's curves
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.is_global_zero and value is not None:
            if self.reporter is None:  # opened here: only rank 0 talks to the storage
                self.reporter = TrialReporter(self.ref)
            prune = self.reporter.report(epoch, float(value))
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_epoch = epoch
            trainer.should_stop = True
            if trainer.is_global_zero:
                print(f"[train] pruned by the Optuna study after epoch {epoch}: {self.monitor}={value:.4f}", flush=True)
