"""Hydra callback for multirun sweeps: one MLflow parent run, one child run per job.

A sweep of an experiment preset (`experiment=claim_mlp`) that finished without
failures is also collected into reports/results/<preset>.json for the report.

The parent run is created before any job starts (which also creates the store
and the experiment once, so parallel jobs never race to initialise them); its
id reaches the jobs through the environment, which the joblib launcher's
worker processes inherit.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PARENT_ENV = "PIPELINE_PARENT_RUN_ID"


class SweepTracking(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline import tracking

        uri = tracking.resolve_uri(config.tracking.uri)
        client = tracking.client(uri)
        experiment = tracking.experiment_id(client, config.tracking.experiment, uri)
        overrides = " ".join(config.hydra.overrides.task)
        preset = config.hydra.runtime.choices.get("experiment")
        name = f"sweep-{preset or config.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        run = client.create_run(experiment, run_name=name, tags={**({"preset": preset} if preset else {}),
            "sweep": "parent", "mlflow.note.content": f"Reproduce with:\n\n    python -m pipeline.train -m {overrides}",
            "hydra.overrides": overrides or "none", "sweep.dir": str(config.hydra.sweep.dir), **tracking.git_state()})
        os.environ[PARENT_ENV] = run.info.run_id
        self.uri, self.run_id = uri, run.info.run_id
        print(f"[sweep] MLflow parent run {run.info.run_id} ({name}) in {uri}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline import tracking

        if getattr(self, "run_id", None):
            client = tracking.client(self.uri)
            children = client.search_runs([client.get_run(self.run_id).info.experiment_id],
                                          filter_string=f"tags.mlflow.parentRunId = '{self.run_id}'")
            failed = [c for c in children if c.info.status != "FINISHED"]
            tracking.log_metrics(self.uri, self.run_id, {"sweep/jobs": len(children), "sweep/failed": len(failed)})
            tracking.end_run(self.uri, self.run_id, "FAILED" if failed else "FINISHED")
            preset = config.hydra.runtime.choices.get("experiment")
            if preset and not failed:
                # A preset's sweep is a result the report shows: keep a copy beside the report.
                from pipeline import results

                try:
                    path = results.write(self.uri, self.run_id, config.report.results_dir)
                    print(f"[sweep] {len(children)} jobs collected into {path}", flush=True)
                except Exception as err:  # the runs are safe in MLflow; only the copy for the report is missing
                    print(f"[sweep] could not collect the results for the report ({err}); the runs are in "
                          f"MLflow under parent run {self.run_id}", flush=True)
            os.environ.pop(PARENT_ENV, None)
