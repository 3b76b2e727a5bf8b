"""Hydra callback for multirun sweeps: one MLflow parent run, one child run per job.

A sweep of an experiment preset (`experiment=claim_mlp`) that finished without
failures is also collected into reports/results/<preset>.json for the report.

The parent run is created before any job starts (which also creates the store
and the experiment once, so parallel jobs never race to initialise them); each
job's run names it as parent (pipeline.tracking.sweeps).
"""

from __future__ import annotations

import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# Tag of a job's run that was interrupted and run again as another job (a retried Optuna trial).
RETRIED_TAG = "sweep.retried"


class SweepTracking(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import sweeps

        refuse_bad_pruner(config)
        overrides = " ".join(config.hydra.overrides.task)
        preset = config.hydra.runtime.choices.get("experiment")
        name = f"sweep-{preset or config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.run = sweeps.start_sweep(
            config,
            name,
            tags={
                **({"preset": preset} if preset else {}),
                "sweep": "parent",
                "mlflow.note.content": f"Reproduce with:\n\n    python -m pipeline.stages.train -m {overrides}",
                "hydra.overrides": overrides or "none",
                "sweep.dir": str(config.hydra.sweep.dir),
            },
        )
        sweeps.announce_sweep_parent(self.run.run_id)
        print(f"[sweep] MLflow parent run {self.run.run_id} ({name}) in {self.run.uri}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import sweeps
        from pipeline.tracking.runs import Run

        run = getattr(self, "run", None)
        if run is None:
            return
        # A sweeper that joins a shared study (hydra/sweeper=optuna_study) moves the jobs to the
        # study's parent run: end and collect that one.
        run = Run(run.uri, sweeps.sweep_parent_id() or run.run_id)
        children = sweeps.child_runs(run)
        failed = [c for c in children if c.info.status != "FINISHED" and c.data.tags.get(RETRIED_TAG) != "true"]
        run.log_metrics({"sweep/jobs": len(children), "sweep/failed": len(failed)})
        run.end("FAILED" if failed else "FINISHED")
        preset = config.hydra.runtime.choices.get("experiment")
        if preset and not failed:
            # A preset's sweep is a result the report shows: keep a copy beside the report.
            from pipeline.claims import results

            try:
                path = results.write(run.uri, run.run_id, config.report.results_dir)
                print(f"[sweep] {len(children)} jobs collected into {path}", flush=True)
            except Exception as err:  # the runs are safe in MLflow; only the copy for the report is missing
                print(
                    f"[sweep] could not collect the results for the report ({err}); the runs are in "
                    f"MLflow under parent run {run.run_id}",
                    flush=True,
                )
        sweeps.announce_sweep_parent(None)


def refuse_bad_pruner(config: DictConfig) -> None:
    """A bad hydra.sweeper.pruner (hydra/sweeper=optuna_study) stops the sweep here, the first code of
    a multirun, before its parent run or folder exist (Hydra builds the sweeper only after this)."""
    pruner = config.hydra.sweeper.get("pruner")
    if pruner is None:
        return
    from pipeline.training.optuna_trial import pruner_problem

    problem = pruner_problem(pruner)
    if problem:
        from pipeline.stages.cli import refuse

        refuse(problem)
