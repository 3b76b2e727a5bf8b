"""The report and the sweep results without training: the committed results render into every
claim, and a sweep's MLflow runs become the results file the report reads (seconds, fast tier)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.claims import results
from pipeline.config.settings import compose
from pipeline.stages import report
from pipeline.tracking.runs import start_run
from pipeline.tracking.sweeps import start_sweep

COMMITTED = Path(__file__).resolve().parents[1] / "reports" / "results"


def test_committed_results_render_every_claim_with_a_verdict(tmp_path):
    shutil.copytree(COMMITTED, tmp_path / "results")
    cfg = compose(
        [f"report.dir={tmp_path / 'report'}", f"report.results_dir={tmp_path / 'results'}", f"run_dir={tmp_path}"]
    )
    written = report.build(cfg)
    markdown = written["report.md"].read_text()
    summary = markdown.split("\n\n## ")[0]  # the claims table: # | claim | measured | verdict | published | command
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in summary.splitlines() if line.startswith("| ")]
    verdicts = {cells[0]: cells[3] for cells in rows if len(cells) == 6}
    published = {cells[0]: cells[4] for cells in rows if len(cells) == 6}
    assert all(published[n] not in ("", "-") for n in verdicts if n != "S"), published  # every claim's literature
    for number in ("1", "2", "3", "4", "5", "6", "8", "9", "10", "12", "14"):  # the committed sweeps support these
        assert verdicts.get(number) == "holds", (number, verdicts)
    assert verdicts["13"] == "holds for initialisation and batch norm only"  # dropout: no gain in 8 epochs
    assert verdicts["15"] == "holds for the MLP and the CNN only"  # not for the adversarially trained model
    assert verdicts["R"].split(" (")[0] in ("holds", "does not hold")  # the remedy row, with its checks beside
    assert verdicts["C"].startswith("recorded for ")  # the compute row: the presets swept with CPU-seconds
    assert markdown.count("Square alone (black-box, 5,000 queries) leaves") == 2  # eps 0.1 and 0.3
    assert written["report.html"].read_text().count("<table") >= 2
    figures = sorted(p.name for p in written["figures"].iterdir())
    assert figures == [
        "activations.png",
        "baselines.png",
        "composition.png",
        "depth.png",
        "linear.png",
        "loss_curve.png",
        "mechanics.png",
        "perturbation.png",
        "perturbation_examples.png",
        "samples.png",
        "scaling.png",
        "techniques.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in written["figures"].iterdir())


def test_a_sweeps_runs_become_the_results_file_in_job_order(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose([f"tracking.uri={uri}"])
    parent = start_sweep(cfg, "claim_mlp", tags={"preset": "claim_mlp"})
    for job, acc in ((1, 0.97), (0, 0.96)):  # registered out of order: the file follows sweep.job
        job_cfg = compose([f"tracking.uri={uri}", f"seed={job}"])
        run = start_run(job_cfg, f"job{job}", parent_run_id=parent.run_id)
        run.set_tags({"sweep.job": str(job), "hydra.overrides": f"seed={job}"})
        for epoch, value in enumerate((acc - 0.02, acc)):
            run.log_metrics({"val/acc": value}, step=epoch)
        run.end()
    path = results.write(uri, parent.run_id, tmp_path / "results")
    data = json.loads(path.read_text())
    assert path.name == "claim_mlp.json" and data["preset"] == "claim_mlp"
    assert [j["job"] for j in data["jobs"]] == [0, 1]
    first = data["jobs"][0]
    assert set(first["params"]) <= set(results.PARAMS) and first["params"]["seed"] == "0"
    assert first["overrides"] == "seed=0"
    assert first["history"]["val/acc"] == pytest.approx([0.94, 0.96]) and first["status"] == "FINISHED"
    assert data["figures"] == {}  # the jobs logged no layer figures
