"""The claim checks and the linear-collapse proof on small, known inputs."""

import math

import pytest
import torch

from pipeline.claims.catalogue import all_claims
from pipeline.claims.model import Table
from pipeline.claims.scaling import power_law
from pipeline.claims.textbook import activations_claim, seeds_claim
from pipeline.nn import collapse
from pipeline.nn.models import MLP
from pipeline.training.datamodule import TensorBatches


@pytest.mark.parametrize("hidden", [(), (32,), (64, 32, 16)])
def test_identity_stack_equals_its_multiplied_out_map(hidden):
    torch.manual_seed(0)
    model = MLP(hidden, "identity").eval()
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (300,))
    result = collapse.compare(model, images, labels)
    assert result["max_logit_diff"] < 1e-4 and result["prediction_agreement"] == 1.0
    assert result["network_acc"] == result["single_map_acc"] and result["layers"] == len(hidden) + 1
    weight, bias = collapse.collapse(model)
    assert weight.shape == (10, 784) and bias.shape == (10,)


def test_a_relu_network_is_not_a_linear_map():
    model = MLP((32,), "relu")
    assert not collapse.is_linear_stack(model)
    with pytest.raises(ValueError, match="activation=identity"):
        collapse.collapse(model)


def test_power_law_fit_recovers_known_exponent():
    xs = [1e3, 1e4, 1e5, 1e6]
    a, b, r2 = power_law(xs, [2.0 * x**-0.3 for x in xs])
    assert math.isclose(a, 2.0, rel_tol=1e-9) and math.isclose(b, 0.3, rel_tol=1e-9) and r2 > 0.999999


def _job(job, params, metrics, history=None):
    return {
        "job": job,
        "status": "FINISHED",
        "run_id": f"r{job}",
        "overrides": "",
        "params": params,
        "metrics": metrics,
        "history": history or {},
    }


def test_seed_claim_reports_mean_and_sample_std():
    jobs = [
        _job(
            i,
            {"seed": str(i), "model.parameters": "109386"},
            {"test/acc": acc, "test/loss": 0.1, "val/best_acc": acc, "time/train_s": 10.0},
        )
        for i, acc in enumerate([0.97, 0.975, 0.98])
    ]
    claim = seeds_claim("1", "text", "claim_mlp", {"claim_mlp": {"jobs": jobs}}, (0.96, 0.985))
    assert claim.verdict == "holds" and "97.50 % ± 0.50 %" in claim.measured and "109,386" in claim.measured
    cnn = seeds_claim("2", "text", "claim_mlp", {"claim_mlp": {"jobs": jobs}}, (0.995, 1.0))
    assert cnn.verdict == "does not hold"


def test_activation_claim_times_the_target_from_the_history():
    def history(accs):
        return {"val/acc": accs, "train/loss": [1.0] * len(accs), "time/epoch_s": [2.0] * len(accs)}

    jobs = [
        _job(0, {"model.activation": "relu"}, {"test/acc": 0.975, "test/loss": 0.08}, history([0.96, 0.971])),
        _job(1, {"model.activation": "sigmoid"}, {"test/acc": 0.96, "test/loss": 0.1}, history([0.90, 0.95])),
    ]
    claim = activations_claim({"claim_activations": {"jobs": jobs}})
    assert claim.verdict == "holds"
    table = claim.details[0]
    assert isinstance(table, Table)
    assert table.rows[0][4:6] == [2, "4.0 s"] and table.rows[1][4] == "not reached"


def test_missing_results_say_how_to_measure_them():
    for claim in all_claims({}):
        assert claim.verdict == "not run" and claim.measured == "not measured yet"


def test_epoch_size_cycles_a_small_subset_with_fresh_permutations():
    images = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1).expand(10, 28, 28).contiguous()
    batches = TensorBatches(images, torch.arange(10), batch_size=8, shuffle=True, seed=3, epoch_size=35)
    assert len(batches) == 5
    seen = torch.cat([y for _, y in batches])
    assert len(seen) == 35 and torch.bincount(seen, minlength=10).min() >= 3  # every example, cycled
    assert torch.equal(
        seen,
        torch.cat(
            [y for _, y in TensorBatches(images, torch.arange(10), 8, True, seed=3, epoch_size=35, epoch_fn=lambda: 0)]
        ),
    )
