"""Claim 14: the digit-pair data, the fixed adder, the composition stage and the verdict rule on both sides."""

import pytest
import torch
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.claims.composition import MIN_GAP, PRESET, composition_claim, composition_verdict
from pipeline.nn import digit_pairs as dp


@pytest.mark.parametrize("seed", range(6))
def test_held_out_pairs_leave_every_digit_and_sum_in_training(seed):
    held = dp.held_out_pairs(seed)
    assert len(held) == dp.HELD_OUT and held == dp.held_out_pairs(seed)  # the same split for the same seed
    assert sorted(a for a, _ in held) == list(range(10)) and sorted(b for _, b in held) == list(range(10))
    assert (0, 0) not in held and (9, 9) not in held  # the only pairs summing to 0 and to 18
    seen = {(a, b) for a in range(10) for b in range(10)} - set(held)
    assert {a + b for a, b in seen} == set(range(dp.SUMS))
    assert len({tuple(dp.held_out_pairs(s)) for s in range(6)}) == 6


def test_pairs_put_two_digits_side_by_side_labelled_with_their_sum():
    images = torch.arange(10, dtype=torch.uint8).repeat_interleave(3).view(30, 1, 1).expand(30, 28, 28).contiguous()
    labels = torch.arange(10).repeat_interleave(3)
    x, sums, index = dp.make_pairs(images, labels, [(2, 7), (9, 1)], per_pair=4, seed=0)
    assert x.shape == (8, 1, 28, 56) and sums.tolist() == [9] * 4 + [10] * 4 and index.tolist() == [0] * 4 + [1] * 4
    assert torch.all(x[0, 0, :, :28] == 2 / 255) and torch.all(x[0, 0, :, 28:] == 7 / 255)
    assert torch.all(x[5, 0, :, :28] == 9 / 255) and torch.all(x[5, 0, :, 28:] == 1 / 255)


def test_the_fixed_adder_adds_the_two_digit_distributions():
    model = dp.Factored([8])
    left = torch.tensor([[0.0] * 3 + [1.0] + [0.0] * 6, [0.5, 0.5] + [0.0] * 8])
    right = torch.tensor([[0.0] * 5 + [1.0] + [0.0] * 4, [0.0] * 9 + [1.0]])
    model.digits = lambda x: (left, right)  # the adder alone, on known digit distributions
    probs = model(torch.zeros(2, 1, 28, 56)).exp()
    assert probs[0, 8] == pytest.approx(1.0) and probs[0].sum() == pytest.approx(1.0, abs=1e-9)
    assert probs[1, 9] == pytest.approx(0.5) and probs[1, 10] == pytest.approx(0.5)


def test_composition_verdict_needs_a_gap_over_ten_points_on_some_split():
    assert composition_verdict([0.95, 0.95], [0.90, 0.80])  # 15 points on the second split
    assert not composition_verdict([0.95, 0.95], [0.90, 0.95 - MIN_GAP])  # exactly 10 points is no more than 10
    assert not composition_verdict([], [])


def _job(split: int, e2e: tuple[float, float], factored: tuple[float, float]) -> dict:
    metrics = {"composition/factored/digit_acc": 0.97}
    for model, (seen, unseen) in (("end_to_end", e2e), ("factored", factored)):
        metrics |= {
            f"composition/{model}/seen_acc": seen,
            f"composition/{model}/unseen_acc": unseen,
            f"composition/{model}/seconds": 30.0,
            f"composition/{model}/pair_05_acc": unseen,
        }
    params = {"composition.split": str(split), "composition.held_out": "0+5 1+3", "composition.hidden": "[256, 128]"}
    return {"status": "FINISHED", "params": params, "metrics": metrics}


def test_claim_reads_each_split_and_states_the_gap():
    results = {PRESET: {"jobs": [_job(1, (0.96, 0.70), (0.95, 0.94)), _job(0, (0.96, 0.93), (0.95, 0.95))]}}
    claim = composition_claim(results)
    assert claim.verdict == "holds"
    assert "a gap of 3.0, 26.0 points over 2 splits" in claim.measured
    assert [row[0] for row in claim.details[0].rows] == [0, 0, 1, 1]
    assert claim.command == "python -m pipeline.stages.composition experiment=claim_composition"
    assert "97.00 % on the test digits" in claim.details[1].text
    close = {PRESET: {"jobs": [_job(0, (0.96, 0.93), (0.95, 0.95))]}}
    assert composition_claim(close).verdict == "does not hold"
    assert composition_claim({}).verdict == "not run"


def test_a_bad_split_is_named_and_leaves_nothing(tmp_path):
    out = run_module(
        "pipeline.stages.composition",
        "experiment=claim_composition",
        "composition.split=-1",
        "hydra.mode=RUN",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "composition.split must be a whole number >= 0" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "outputs").exists()


def test_one_split_trains_both_models_into_one_run(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.composition",
        "experiment=claim_composition",
        "composition.split=3",
        "composition.per_pair_train=30",
        "composition.per_pair_test=10",
        "composition.epochs=2",
        "hydra.mode=RUN",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    held = dp.held_out_pairs(3)
    assert run.info.status == "FINISHED"
    assert run.data.params["composition.held_out"] == " ".join(f"{a}+{b}" for a, b in held)
    m = run.data.metrics
    for model in ("end_to_end", "factored"):
        assert 0.05 < m[f"composition/{model}/seen_acc"] <= 1  # 2,700 images, 2 epochs: well above 1 in 19
        assert 0 <= m[f"composition/{model}/unseen_acc"] <= 1
        assert sorted(k for k in m if k.startswith(f"composition/{model}/pair_")) == sorted(
            f"composition/{model}/pair_{a}{b}_acc" for a, b in held
        )
    assert 0 <= m["composition/factored/digit_acc"] <= 1 and m["time/cpu_s"] > 0
