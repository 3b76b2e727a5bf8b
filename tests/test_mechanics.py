"""Claim 9's measurements on real MNIST and a real MLP, and its verdict rule on both sides."""

import math

import pytest
import torch

from pipeline.claims import mechanics as claim
from pipeline.claims.catalogue import all_claims
from pipeline.claims.render import page, to_markdown
from pipeline.data.mnist import load_split
from pipeline.nn import mechanics
from pipeline.nn.models import MLP


@pytest.fixture(scope="module")
def test_split(mnist_root):
    images, labels = load_split(mnist_root, "test")
    return images[:2000], labels[:2000]


@pytest.mark.parametrize("hidden", [(128, 64), (32,), (64, 32, 16)])
def test_the_numpy_forward_pass_is_the_model(hidden, test_split):
    torch.manual_seed(0)
    model = MLP(hidden, "relu").eval()
    images, _ = test_split
    result = mechanics.numpy_agreement(model, images)
    assert result["numpy_prediction_agreement"] == 1.0 and result["numpy_max_logit_diff"] < 1e-4


def test_the_numpy_pass_notices_a_changed_weight(test_split):
    torch.manual_seed(0)
    model = MLP().eval()
    images, _ = test_split
    numpy_before = mechanics.numpy_logits(model, images.numpy())
    with torch.no_grad():
        model.linear_layers()[-1].bias[3] += 1.0
    assert abs((mechanics.numpy_logits(model, images.numpy()) - numpy_before)[:, 3] - 1.0).max() < 1e-5


def test_an_untrained_network_guesses_with_loss_near_ln_10(test_split):
    torch.manual_seed(1)
    result = mechanics.at_initialisation(MLP(), *test_split)
    assert 0.05 <= result["init_acc"] <= 0.15
    assert abs(result["init_loss"] - math.log(10)) < 0.1


def test_a_large_initialisation_is_not_a_uniform_guess(test_split):
    torch.manual_seed(1)
    model = MLP()
    with torch.no_grad():
        for layer in model.linear_layers():
            layer.weight.mul_(10)
    assert mechanics.at_initialisation(model, *test_split)["init_loss"] > 2 * math.log(10)


class _WrongReluGrad(torch.autograd.Function):
    """ReLU whose backward doubles the gradient: what gradcheck exists to catch."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * grad * (x > 0)


class _WrongRelu(torch.nn.Module):
    def forward(self, x):
        return _WrongReluGrad.apply(x)


def test_gradcheck_passes_on_the_mlp_and_fails_on_a_wrong_backward(test_split):
    torch.manual_seed(0)
    model = MLP((8, 4))  # small: a failed fast check reruns entry by entry to say where
    good = mechanics.gradient_check(model, *test_split)
    assert good["gradcheck_all_fast"] and good["gradcheck_output_layer"]
    assert good["gradcheck_output_layer_entries"] == 4 * 10 + 10
    for i, module in enumerate(model.net):
        if isinstance(module, torch.nn.ReLU):
            model.net[i] = _WrongRelu()
    bad = mechanics.gradient_check(model, *test_split)
    assert not bad["gradcheck_all_fast"]
    assert bad["gradcheck_output_layer"]  # the output layer's gradient does not pass through a ReLU


def test_the_backward_pass_costs_a_few_forward_passes(test_split):
    torch.manual_seed(0)
    result = mechanics.backward_cost(MLP(), *test_split, repeats=10)
    assert result["finite_difference_passes"] == 2 * 109_386
    assert result["forward_ms"] > 0 and 0 < result["backward_over_forward"] < 20
    assert result["finite_difference_over_gradient"] > 1000


def _job(seed, **changes):
    metrics = {
        "numpy_prediction_agreement": 1.0,
        "numpy_max_logit_diff": 2e-6,
        "init_acc": 0.1,
        "init_loss": 2.31,
        "gradcheck_all_fast": 1.0,
        "gradcheck_output_layer": 1.0,
        "gradcheck_output_layer_entries": 650.0,
        "forward_ms": 1.0,
        "backward_ms": 1.5,
        "backward_over_forward": 1.5,
        "finite_difference_passes": 218772.0,
        "finite_difference_s": 218.8,
        "finite_difference_over_gradient": 87000.0,
    }
    metrics.update(changes)
    return {
        "job": seed,
        "status": "FINISHED",
        "params": {"seed": str(seed)},
        "metrics": {"test/acc": 0.975, **{f"mechanics/{k}": v for k, v in metrics.items()}},
        "history": {},
    }


def _claim(*jobs):
    return claim.mechanics_claim({claim.PRESET: {"jobs": list(jobs)}})


def test_the_claim_holds_when_every_seed_passes_every_part():
    c = _claim(_job(1), _job(2))
    assert c.verdict == "holds"
    assert "218,772 forward passes" in c.measured and "1.50-1.50x the forward pass" in c.measured


@pytest.mark.parametrize(
    ("change", "part"),
    [
        ({"numpy_prediction_agreement": 0.9999}, "NumPy forward pass"),
        ({"numpy_max_logit_diff": 1e-3}, "NumPy forward pass"),
        ({"init_acc": 0.3}, "initialisation"),
        ({"init_loss": 2.6}, "initialisation"),
        ({"gradcheck_output_layer": 0.0}, "gradcheck"),
        ({"backward_over_forward": 6.0}, "backward cost"),
    ],
)
def test_one_seed_failing_one_part_fails_the_claim_and_names_the_part(change, part):
    c = _claim(_job(1), _job(2, **change))
    assert c.verdict == f"does not hold ({part})"


def test_the_report_shows_the_published_figure_beside_the_measurement():
    claims = all_claims({claim.PRESET: {"jobs": [_job(1)], "seconds": 180.0}})
    assert all(c.published for c in claims), [c.number for c in claims if not c.published]
    md = to_markdown(page(claims, None, {}))
    assert "**Sweep time:** 3.0 min on this machine." in md  # the preset's sweep, start to end
    header = next(line for line in md.splitlines() if line.startswith("| #"))
    assert "published" in header
    assert "Griewank & Walther" in md
