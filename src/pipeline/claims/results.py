"""A finished preset sweep, collected from MLflow into reports/results/<preset>.json.

The report stage reads these files, not the store: they are small, reviewable in
git, and make `dvc repro` re-render the report when a sweep has been rerun.
Per job: its overrides, parameters, final metrics and per-epoch history (under the project's metric
names, whatever MLflow shows: metric_names.project_name), and for
the first job the figures of what its layers detect.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.common.metric_names import EPOCH_METRICS, EPOCH_SECONDS, TRAIN_STEP_LOSS, project_name
from pipeline.tracking.system_metrics import PREFIX as SYSTEM_PREFIX

HISTORY = (*EPOCH_METRICS, EPOCH_SECONDS)
PARAMS = (
    "seed",
    "model.name",
    "model.arch",
    "model.hidden",
    "model.activation",
    "model.channels",
    "model.dropout",
    "model.batch_norm",
    "model.init",
    "model.parameters",
    "data.train_subset",
    "data.epoch_size",
    "data.augment",
    "optim.name",
    "optim.lr",
    "optim.momentum",
    "optim.scheduler",
    "trainer.max_epochs",
    "robustness.profile",
    "robustness.n_images",
    "baseline.estimator",
    "depth.sawtooth.target_rmse",
    "composition.split",
    "composition.held_out",
    "composition.per_pair_train",
    "composition.per_pair_test",
    "composition.hidden",
    "composition.epochs",
    "perturbation.model",
    "perturbation.source",
    "perturbation.model_version",
    "perturbation.images",
    "perturbation.pgd_steps",
    "perturbation.eps",
    "perturbation.visible_eps",
)
FIGURES = ("evaluation/filters_layer1.png", "evaluation/filters_deep.png")
# Presets whose layer figures the report shows (filters_claim); the others keep theirs in MLflow only.
FIGURE_PRESETS = ("claim_mlp", "claim_cnn")
# Presets whose jobs log a small JSON artifact the report draws from (each job's under "artifact").
JOB_ARTIFACTS = {"claim_perturbation": "perturbation/examples.json"}


def collect(uri: str, parent_run_id: str) -> dict:
    """The parent run and its children (in job order) as plain data."""
    from pipeline.tracking.runs import Run
    from pipeline.tracking.sweeps import child_runs

    parent = Run(uri, parent_run_id).get()
    artifact = JOB_ARTIFACTS.get(parent.data.tags.get("preset", ""))
    children = child_runs(Run(uri, parent_run_id))
    children.sort(key=lambda r: int(r.data.tags.get("sweep.job", 0)))
    jobs = []
    for run in children:
        history = {}
        for key in HISTORY:
            values = Run(uri, run.info.run_id).metric_history(key)
            if values:
                history[key] = values
        # The loss over training steps, as [step, value] pairs (5 significant digits keep the file small).
        curve = [[s, float(f"{v:.5g}")] for s, v in Run(uri, run.info.run_id).metric_points(TRAIN_STEP_LOSS)]
        jobs.append(
            {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "job": int(run.data.tags.get("sweep.job", -1)),
                "overrides": run.data.tags.get("hydra.overrides", ""),
                "params": {k: run.data.params[k] for k in PARAMS if k in run.data.params},
                # The machine's last CPU and memory sample says nothing about a claim, and would
                # make every rerun differ in git: system metrics stay in MLflow.
                "metrics": dict(
                    sorted((project_name(k), v) for k, v in run.data.metrics.items() if not k.startswith(SYSTEM_PREFIX))
                ),
                "history": history,
                **({"steps": {TRAIN_STEP_LOSS: curve}} if curve else {}),
                **({"artifact": Run(uri, run.info.run_id).json_artifact(artifact)} if artifact else {}),
            }
        )
    return {
        "preset": parent.data.tags.get("preset"),
        "parent_run_id": parent_run_id,
        "command": parent.data.tags.get("mlflow.note.content", "").split("\n")[-1].strip(),
        "git_commit": parent.data.tags.get("git.commit", ""),
        "tracking_uri": uri,
        # The whole sweep, as the user waited for it (a resumed sweep counts from its first start).
        "seconds": (parent.info.end_time - parent.info.start_time) / 1000 if parent.info.end_time else None,
        "jobs": jobs,
    }


def write(uri: str, parent_run_id: str, results_dir: str | Path) -> Path:
    """reports/results/<preset>.json (and its figures), written atomically."""
    from pipeline.common import atomic
    from pipeline.tracking.runs import Run

    data = collect(uri, parent_run_id)
    out_dir = Path(results_dir)
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    data["figures"] = {}
    for artifact in (
        FIGURES if data["preset"] in FIGURE_PRESETS else ()
    ):  # from the first job that has them (a single linear layer has none)
        for job in data["jobs"]:
            try:
                local = Run(uri, job["run_id"]).download_artifact(artifact)
            except Exception:
                continue
            name = f"{data['preset']}_{Path(artifact).name}"
            shutil.copyfile(local, figure_dir / name)
            data["figures"][Path(artifact).stem] = {"path": f"figures/{name}", "job": job["job"]}
            break
    path = out_dir / f"{data['preset']}.json"
    atomic.write_text(path, json.dumps(data, indent=1) + "\n")
    return path
