"""Hydra callback for multirun sweeps: one MLflow parent run, one child run per job.

A sweep of an experiment preset (`experiment=claim_mlp`) that finished without
failures is also collected into reports/results/<preset>.json for the report.

The parent run is created before any job starts (which also creates the store
and the experiment once, so parallel jobs never race to initialise them); each
job's run names it as parent (pipeline.tracking.sweeps).
"""

from __future__ import annotations

import atexit
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from pipeline.stages.sweep_jobs import failed_jobs, reruns_jobs

# Tag of a job's run that was interrupted and run again in another run (a retried Optuna trial, a
# measuring stage's job after the sweep was run again).
RETRIED_TAG = "sweep.retried"


class SweepTracking(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.stages import cli
        from pipeline.tracking import sweeps

        refuse_bad_pruner(config)
        overrides = " ".join(config.hydra.overrides.task)
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        self.reruns = reruns_jobs(config.hydra.sweeper)
        self.run = sweeps.unfinished_sweep(config, overrides) if self.reruns else None
        if self.run is not None:
            # The same sweep again after it failed (or its process died): its jobs that finished are kept, the others
            # resume in their own runs (stages/job.py), under the same parent.
            self.run.open()
            self.run.set_tags(sweeps.owner_tags())
            print(
                f"[sweep] resuming sweep parent run {self.run.run_id}: its finished jobs are kept, "
                f"the others run again in their own runs",
                flush=True,
            )
        else:
            preset = config.hydra.runtime.choices.get("experiment")
            name = f"sweep-{preset or config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            self.run = sweeps.start_sweep(
                config,
                name,
                tags={
                    **({"preset": preset} if preset else {}),
                    "sweep": "parent",
                    "mlflow.note.content": f"Reproduce with:\n\n    python -m {cli.running_stage} -m {overrides}",
                    "hydra.overrides": overrides or "none",
                    "sweep.dir": str(config.hydra.sweep.dir),
                },
            )
            print(f"[sweep] MLflow parent run {self.run.run_id} ({name}) in {self.run.uri}", flush=True)
        sweeps.announce_sweep_parent(self.run.run_id)
        # Hydra's sweepers raise out of the sweep at a failed job, and Ctrl-C skips on_multirun_end:
        # the parent is then ended at exit, never left RUNNING.
        atexit.register(self._end_if_running)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import sweeps

        run = self._end(finished=True)
        preset = config.hydra.runtime.choices.get("experiment")
        if run is not None and preset and not self.failed:
            # A preset's sweep is a result the report shows: keep a copy beside the report.
            from pipeline.claims import results

            try:
                path = results.write(run.uri, run.run_id, config.report.results_dir)
                print(f"[sweep] {self.jobs} jobs collected into {path}", flush=True)
            except Exception as err:  # the runs are safe in MLflow; only the copy for the report is missing
                print(
                    f"[sweep] could not collect the results for the report ({err}); the runs are in "
                    f"MLflow under parent run {run.run_id}",
                    flush=True,
                )
        sweeps.announce_sweep_parent(None)

    def _end_if_running(self) -> None:
        from pipeline.stages.resume_command import store_unreachable

        try:
            self._end(finished=False)
        except Exception as err:  # at exit: say it, do not hide the sweep's own error
            run = getattr(self, "run", None)
            if run is None or not store_unreachable(err):
                print(f"warning: could not end the sweep's parent run: {err}", file=sys.stderr, flush=True)
                return
            # The counts come from the sweep's folder: the store that would hold them does not answer.
            failed = len(failed_jobs(self.sweep_dir))
            again = " Once it answers, run the same command again: it resumes this sweep, keeps the finished jobs"
            print(
                f"[sweep] {failed} job(s) failed (named above; {self.sweep_dir}/job-failed-*.json); the tracking "
                f"store {run.uri} does not answer, so parent run {run.run_id} stays RUNNING."
                + (f"{again} and runs the others in their own runs." if self.reruns else ""),
                file=sys.stderr,
                flush=True,
            )

    def _end(self, finished: bool):
        """End the parent once: FINISHED when every job finished, else FAILED (failed jobs) or KILLED
        (the sweep was stopped), with the counts `sweep/jobs` and `sweep/failed`."""
        from pipeline.tracking import sweeps
        from pipeline.tracking.runs import Run

        run = getattr(self, "run", None)
        if run is None or getattr(self, "ended", False):
            return None
        self.ended = True
        # A sweeper that joins a shared study (hydra/sweeper=optuna_study) moves the jobs to the
        # study's parent run: end and collect that one.
        run = Run(run.uri, sweeps.sweep_parent_id() or run.run_id)
        every = sweeps.child_runs(run)
        children = [c for c in every if c.data.tags.get(RETRIED_TAG) != "true"]  # each job once
        failed = [c for c in children if c.info.status != "FINISHED"]
        # Jobs that failed before they had a run (the store unreachable as they started).
        named = {c.info.run_id for c in every}
        errors = failed_jobs(self.sweep_dir)
        runless = [f for f in errors if not _names_a_run(f["run_dir"], named)]
        self.jobs, self.failed = len(children) + len(runless), len(failed) + len(runless)
        run.log_metrics({"sweep/jobs": self.jobs, "sweep/failed": self.failed})
        # Stopped before its end with no job in error: interrupted (Ctrl-C, SIGTERM).
        status = ("FAILED" if self.failed else "FINISHED") if finished else ("FAILED" if errors else "KILLED")
        run.end(status)
        if status != "FINISHED":
            again = " Run the same command again: the finished jobs are kept, the others resume in their own runs."
            print(
                f"[sweep] {'stopped: ' if status == 'KILLED' else ''}{self.failed} of {self.jobs} jobs did not "
                f"finish; parent run {run.run_id} ends {status}.{again if self.reruns else ''}",
                file=sys.stderr,
                flush=True,
            )
        return run


def _names_a_run(run_dir: str, run_ids: set[str]) -> bool:
    from pipeline.tracking import run_ref

    ref = run_ref.find(run_dir)
    return ref is not None and ref.get("run_id") in run_ids


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
