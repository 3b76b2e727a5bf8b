"""Claim 12: the sawtooth, the linear-region counter, the depth stage and the verdict rule, on both sides."""

import json

import pytest
import torch
from conftest import run_module
from mlflow.tracking import MlflowClient
from torch import nn

from pipeline.claims.depth import PRESET, depth_against_width, depth_claim, sawtooth_verdict
from pipeline.nn import depth


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_two_relus_per_layer_compute_the_sawtooth_exactly(k):
    net = depth.sawtooth_net(k)
    assert sum(m.out_features for m in net if isinstance(m, nn.Linear)) - 1 == 2 * k  # 2k neurons
    x = torch.rand(5000, 1, dtype=torch.float64)
    assert torch.equal(net(x), depth.sawtooth(x, k))
    # the teeth: 2^(k-1) peaks of height 1 at odd multiples of 2^-k
    peaks = torch.arange(1, 2**k, 2, dtype=torch.float64).unsqueeze(1) / 2**k
    assert torch.allclose(depth.sawtooth(peaks, k), torch.ones_like(peaks))


def test_the_regions_along_a_line_are_the_kinks_a_net_puts_on_it():
    one_layer = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():  # kinks at 0.25, 0.5 and 0.75
        one_layer[0].weight.fill_(1.0)
        one_layer[0].bias.copy_(torch.tensor([-0.25, -0.5, -0.75]))
    zero, one = torch.tensor([0.0]), torch.tensor([1.0])
    assert depth.regions_along_line(one_layer, zero, one, 1000) == 4
    assert depth.regions_along_line(one_layer, zero, torch.tensor([0.4]), 1000) == 2
    # the sawtooth net cuts [0, 1] into at least its 2^k linear pieces
    for k in (3, 6):
        assert 2**k <= depth.regions_along_line(depth.sawtooth_net(k), zero, one, 100_000) <= 2**k + 2 * k
    assert depth.max_regions_on_a_line([2, 3]) == 12 and depth.max_regions_on_a_line([256]) == 257


def test_the_first_layer_shortcut_counts_as_the_whole_forward_pass_would():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 10))
    a, b = torch.rand(1, 28, 28), torch.rand(1, 28, 28)
    t = torch.linspace(0, 1, 3000, dtype=torch.float64).unsqueeze(1)
    x = a.double().flatten() + t * (b.double() - a.double()).flatten()
    with torch.no_grad():
        h1 = x @ net[1].weight.double().T + net[1].bias.double()
        h2 = h1.clamp_min(0) @ net[3].weight.double().T + net[3].bias.double()
    pattern = torch.cat([h1 > 0, h2 > 0], dim=1)
    brute = 1 + int((pattern[1:] != pattern[:-1]).any(dim=1).sum())
    assert depth.regions_along_line(net, a, b, 3000) == brute > 1
    with pytest.raises(TypeError, match="Linear and ReLU"):
        depth.regions_along_line(nn.Sequential(nn.Linear(784, 4), nn.Tanh()), a, b, 10)


def test_one_hidden_layer_needs_about_as_many_neurons_as_pieces():
    found = depth.smallest_shallow_width(2, 0.05, seed=1, steps=300)
    # w ReLUs make at most w + 1 pieces: the 4 pieces need at least 3
    assert 3 <= found["width"] <= 32 and found["tried"][found["width"]] <= 0.05
    assert all(rmse > 0.05 for width, rmse in found["tried"].items() if width < 3)
    assert depth.smallest_shallow_width(6, 0.05, seed=1, steps=1, max_width=8)["width"] is None


def test_the_verdict_holds_for_exponential_widths_and_not_for_linear_ones():
    ks = [2, 3, 4, 5, 6]
    exact = [0.0] * len(ks)
    holds, text = sawtooth_verdict(ks, [4 * 2**k for k in ks], exact, 0.05)
    assert holds and "2^(1.00 k)" in text
    holds, _ = sawtooth_verdict(ks, [3 * k for k in ks], exact, 0.05)  # slope log2(18/6)/4 = 0.40
    assert not holds
    holds, _ = sawtooth_verdict(ks, [1.7**k for k in ks], exact, 0.05)  # slope 0.77
    assert holds
    holds, _ = sawtooth_verdict(ks, [1.6**k for k in ks], exact, 0.05)  # slope 0.68
    assert not holds
    holds, text = sawtooth_verdict(ks, [4 * 2**k for k in ks], [0.0, 0.0, 0.0, 0.2, 0.0], 0.05)
    assert not holds and "not at every k" in text
    holds, _ = sawtooth_verdict(ks, [4, 8, 16, None, None], exact, 0.05)  # the largest not found: still grows
    assert holds


def _results(widths, regions=(100, 90, 80, 60)):
    ks = list(range(2, 2 + len(widths)))
    saw = {}
    for k, w in zip(ks, widths, strict=True):
        saw |= {
            f"sawtooth/k{k}/pieces": 2**k,
            f"sawtooth/k{k}/shallow_width": w,
            f"sawtooth/k{k}/shallow_rmse": 0.04,
            f"sawtooth/k{k}/deep_rmse": 0.0,
            f"sawtooth/k{k}/deep_trained_rmse": 0.289,
        }
    reg = {}
    for d, count in zip((1, 2, 4, 8), regions, strict=True):
        reg |= {
            f"regions/depth{d}/neurons": 256,
            f"regions/depth{d}/parameters": 200_000 // d,
            f"regions/depth{d}/init": count,
            f"regions/depth{d}/trained": count * 1.2,
            f"regions/depth{d}/trained_double_points": count * 1.2,
            f"regions/depth{d}/log10_max_regions": 2.4 * d,
            f"regions/depth{d}/test_acc": 0.97,
        }
    job = lambda name, metrics: {"status": "FINISHED", "params": {"model.name": name}, "metrics": metrics}  # noqa: E731
    scaling = [
        {
            "params": {"model.hidden": h, "model.parameters": str(n), "trainer.max_epochs": "8"},
            "metrics": {"test/acc": acc},
        }
        for h, n, acc in (
            ("[512]", 407050, 0.9786),
            ("[256]", 203530, 0.9789),
            ("[256, 256, 256, 256]", 400906, 0.9772),
        )
    ]
    return {PRESET: {"jobs": [job("sawtooth", saw), job("regions", reg)]}, "claim_scaling": {"jobs": scaling}}


def test_the_claim_reads_both_jobs_and_the_scaling_sweep():
    claim = depth_claim(_results([4, 14, 44, 130, 300]))
    assert claim.verdict == "holds", claim.measured
    assert claim.command == "python -m pipeline.stages.depth experiment=claim_depth"
    assert "misses the target at 5 of 5 k" in claim.measured
    assert "120, 108, 96, 72 along a segment" in claim.measured
    assert depth_against_width(_results([4, 8])) == [
        ["[256, 256, 256, 256]: 400,906 parameters, 2.28 %", "[512]: 407,050 parameters, 2.14 %"]
    ]
    assert depth_claim(_results([4, 5, 6, 7, 8])).verdict == "does not hold"
    assert depth_claim({}).verdict == "not run"


def test_an_unknown_part_is_named_and_leaves_nothing(tmp_path):
    out = run_module(
        "pipeline.stages.depth",
        "experiment=claim_depth",
        "depth.part=width",
        "hydra.mode=RUN",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "depth.part=width" in out.stderr and "sawtooth, regions" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_tiny_sweep_records_both_parts_as_child_runs(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = (
        "experiment=claim_depth",
        "depth.sawtooth.ks=[2,3]",
        "depth.sawtooth.steps=100",
        "depth.regions.epochs=1",
        "depth.regions.lines=2",
        "depth.regions.points=2000",
        "data.train_subset=2000",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    )
    out = run_module("pipeline.stages.depth", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sweep") == "parent")
    children = {r.data.params["model.name"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert set(children) == {"sawtooth", "regions"} and len(runs) == 3
    assert "python -m pipeline.stages.depth -m" in parent.data.tags["mlflow.note.content"]
    saw = children["sawtooth"].data
    assert saw.metrics["sawtooth/k3/deep_rmse"] == 0.0 and saw.metrics["sawtooth/k3/deep_neurons"] == 6
    assert saw.metrics["sawtooth/k2/shallow_width"] >= 3 and saw.params["depth.sawtooth.ks"] == "[2, 3]"
    reg = children["regions"].data.metrics
    assert reg["regions/depth8/neurons"] == 256 and 1 <= reg["regions/depth1/trained"] <= 257
    assert 0.3 < reg["regions/depth1/test_acc"] <= 1
    results = json.loads((tmp_path / "reports/results/claim_depth.json").read_text())
    assert [j["params"]["model.name"] for j in results["jobs"]] == ["sawtooth", "regions"]
    assert depth_claim({PRESET: results}).data["sawtooth"]["widths"][0] >= 3
