"""Claim 11: the loss curve over steps is logged from training, and both fits and the verdict rule
behave on curves whose shape is known."""

import math

import numpy as np
import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.claims.loss_curve import MIN_R2, fit_log, fit_power, loss_curve_claim
from pipeline.common.metric_names import TRAIN_STEP_LOSS, mlflow_name

STEPS = np.arange(10, 3441, 10)


def test_the_log_fit_recovers_a_logarithmic_curve():
    fit = fit_log(STEPS, 2.0 - 0.2 * np.log(STEPS))
    assert math.isclose(fit["a"], 2.0, rel_tol=1e-9) and math.isclose(fit["b"], 0.2, rel_tol=1e-9)
    assert fit["r2"] > 0.999999


def test_the_power_fit_recovers_a_power_law():
    fit = fit_power(STEPS, 0.05 + 3 * STEPS**-0.6)
    assert math.isclose(fit["alpha"], 0.6, rel_tol=1e-4) and math.isclose(fit["c"], 0.05, rel_tol=1e-3)
    assert fit["r2"] > 0.999999


def _results(curve):
    points = [[int(s), float(v)] for s, v in zip(STEPS, curve, strict=True)]
    job = {"params": {"seed": "1"}, "metrics": {}, "history": {}, "steps": {TRAIN_STEP_LOSS: points}}
    return {"claim_mlp": {"jobs": [job]}, "claim_cnn": {"jobs": [job]}}


def test_a_logarithmic_loss_holds_and_says_which_fit_is_closer():
    noisy = 2.0 - 0.2 * np.log(STEPS) + np.random.default_rng(0).normal(0, 0.01, len(STEPS))
    claim = loss_curve_claim(_results(noisy))
    assert claim.verdict == "holds"
    assert "over 2 training runs (MLP and CNN)" in claim.measured and "fits better on 0 of 2" in claim.measured


def test_a_power_law_that_bends_away_from_the_logarithm_does_not_hold():
    claim = loss_curve_claim(_results(0.05 + 3 * STEPS**-0.6))
    assert fit_log(STEPS, 0.05 + 3 * STEPS**-0.6)["r2"] < MIN_R2
    assert claim.verdict == "does not hold (a power law describes it better)"


def test_without_a_curve_the_claim_waits():
    assert loss_curve_claim({}).verdict == "not run"


@pytest.mark.slow
def test_training_logs_the_loss_every_ten_steps_once_an_epoch(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "data.train_subset=3000",  # 24 steps an epoch: windows end at steps 10, 20 | 30, 40
        "trainer.max_epochs=2",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"run_dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])[0]
    curve = sorted(client.get_metric_history(run.info.run_id, mlflow_name(TRAIN_STEP_LOSS)), key=lambda m: m.step)
    assert [m.step for m in curve] == [10, 20, 30, 40]
    assert all(0 < m.value < 3 for m in curve) and curve[-1].value < curve[0].value  # it trains
