"""Claim 15's measurement: DeepFool's smallest changes are exact where the model is linear, agree with
an independent implementation on a trained MLP, PGD's grid never beats the true minimum, the verdict
rule on both sides of its line, and the stage's refusals (fast tier)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_module

from pipeline.claims.perturbation import MIN_SHARE, imperceptible_verdict, perturbation_claim
from pipeline.robustness.minimal import deepfool, pgd_radius


class Linear(torch.nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(10, 784, generator=g) * 0.05)
        self.b = torch.nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


def _linear_case(n: int = 64):
    """Grey images (far from the [0, 1] box's walls) and, as labels, what the linear model predicts."""
    model = Linear()
    g = torch.Generator().manual_seed(1)
    x = 0.5 + 0.02 * torch.randn(n, 1, 28, 28, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    f = model(x).detach()
    rows = torch.arange(n)
    w = model.w.detach()[None] - model.w.detach()[y][:, None]
    gaps = (f[rows, y][:, None] - f).abs()
    return model, x, y, gaps, w


def _exact(gaps, w, dual: int, y):
    dist = gaps / w.norm(p=dual, dim=2)
    dist[torch.arange(len(y)), y] = float("inf")
    return dist.min(1).values


@pytest.mark.parametrize(("norm", "dual"), [("l2", 2), ("linf", 1)])
def test_deepfool_is_exact_on_a_linear_model(norm, dual):
    model, x, y, gaps, w = _linear_case()
    found = deepfool(model, x, y, norm, overshoot=0.0001)
    exact = _exact(gaps, w, dual, y)
    assert found.fooled.all() and found.iterations <= 2
    size = found.l2 if norm == "l2" else found.linf
    assert torch.allclose(size, exact * 1.0001, rtol=1e-3)


def test_an_image_already_misclassified_is_fooled_at_size_zero_and_others_keep_their_image():
    model, x, y, _, _ = _linear_case(8)
    wrong = y.clone()
    wrong[0] = (y[0] + 1) % 10
    found = deepfool(model, x, wrong, "l2")
    assert found.fooled[0] and found.l2[0] == 0 and torch.equal(found.adversarial[0], x[0])
    stuck = deepfool(model, x, y, "l2", max_iter=1, overshoot=0.0)  # lands on the boundary, not across it
    assert torch.equal(stuck.adversarial[~stuck.fooled], x[~stuck.fooled])
    assert torch.isinf(stuck.l2[~stuck.fooled]).all()


def test_pgd_radius_never_beats_the_true_minimum_and_comes_within_half_of_it():
    model, x, y, gaps, w = _linear_case()
    exact = _exact(gaps, w, 1, y)
    radii = [float(r) for r in torch.linspace(0.002, 0.2, 100)]
    found = pgd_radius(model, x, y, radii, steps=40)
    assert (found >= exact - 1e-6).all()  # an adversarial example is never smaller than the smallest one
    # PGD climbs the cross-entropy, not the distance to the nearest boundary: close, not exact.
    assert (found <= 1.5 * exact + 0.002).all(), (found / exact).max()


def test_deepfool_agrees_with_the_adversarial_robustness_toolbox_on_a_trained_mlp(mnist_root):
    """ART's DeepFool (an independent implementation) on the same images: the same median L2 within 5 %."""
    from art.attacks.evasion import DeepFool
    from art.estimators.classification import PyTorchClassifier

    from pipeline.data.mnist import load_split

    images, labels = load_split(mnist_root, "train")
    x, y = images[:3000].unsqueeze(1).float().div(255), labels[:3000]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(3):
        for s in range(0, 3000, 100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[s : s + 100]), y[s : s + 100]).backward()
            opt.step()
    model.eval()
    test_x, test_y = load_split(mnist_root, "test")
    test_x, test_y = test_x[:200].unsqueeze(1).float().div(255), test_y[:200]
    ours = deepfool(model, test_x, test_y, "l2", overshoot=0.02, batch_size=100)
    classifier = PyTorchClassifier(
        model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0)
    )
    theirs = DeepFool(classifier, max_iter=50, epsilon=0.02, batch_size=200, verbose=False).generate(test_x.numpy())
    correct = model(test_x).argmax(1) == test_y
    their_pred = torch.from_numpy(classifier.predict(theirs).argmax(1))
    their_l2 = (torch.from_numpy(theirs) - test_x).flatten(1).norm(dim=1)
    their_fooled = correct & (their_pred != test_y)
    assert ours.fooled[correct].float().mean() >= 0.98 and their_fooled[correct].float().mean() >= 0.9
    ours_median, theirs_median = ours.l2[correct].median(), their_l2[their_fooled].median()
    assert abs(ours_median - theirs_median) / theirs_median < 0.05, (ours_median, theirs_median)


def test_the_verdict_rule_on_both_sides_of_its_line():
    assert imperceptible_verdict(MIN_SHARE) and imperceptible_verdict(0.93)
    assert not imperceptible_verdict(MIN_SHARE - 0.01) and not imperceptible_verdict(0.0)


def _job(model: str, within: float, linf: float) -> dict:
    metrics = {
        "perturbation/clean_acc": 0.98,
        "perturbation/l2/median": 1.0,
        "perturbation/linf_deepfool/median": linf * 1.2,
        "perturbation/linf_pgd/median": linf,
        "perturbation/linf/median": linf,
        "perturbation/linf/within_eps": within,
        "perturbation/linf/within_visible_eps": 1.0,
        "time/job_s": 30.0,
    }
    params = {
        "perturbation.model": model,
        "perturbation.images": "1000",
        "perturbation.eps": "0.1",
        "perturbation.visible_eps": "0.3",
    }
    return {"params": params, "metrics": metrics, "artifact": None}


def test_the_claim_names_the_models_it_holds_for():
    jobs = [_job("robust", 0.01, 0.32), _job("mlp", 0.93, 0.06), _job("cnn", 0.62, 0.09)]
    claim = perturbation_claim({"claim_perturbation": {"jobs": jobs}})
    assert claim.verdict == "holds for the MLP and the CNN only"
    assert claim.measured.startswith("the MLP: median smallest change")  # in the claim's order, not the sweep's
    assert "fooled within L-inf 0.1" in claim.measured
    all_hold = [_job("mlp", 0.93, 0.06), _job("cnn", 0.62, 0.09)]
    assert perturbation_claim({"claim_perturbation": {"jobs": all_hold}}).verdict == "holds"
    assert perturbation_claim({"claim_perturbation": {"jobs": [_job("robust", 0.0, 0.3)]}}).verdict == "does not hold"
    assert perturbation_claim({}).verdict == "not run"


def _measure(tmp_path, mnist_root, *overrides: str):
    """`python -m pipeline.stages.perturbation experiment=claim_perturbation` as one run in its own store."""
    return run_module(
        "pipeline.stages.perturbation",
        "experiment=claim_perturbation",
        *overrides,
        "hydra.mode=RUN",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"data.root={mnist_root}",
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
    )


def test_a_model_not_registered_is_named_with_the_command_that_trains_it(tmp_path, mnist_root):
    out = _measure(tmp_path, mnist_root, "perturbation.model=cnn")
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "models:/mnist-cnn@champion" in out.stderr
    assert "python -m pipeline.stages.train experiment=cnn tracking.register=true" in out.stderr
    assert not (tmp_path / "run" / "perturbation").exists()  # nothing measured, nothing half-written


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("perturbation.model=vit", "perturbation.model='vit' is not one of perturbation.models"),
        ("perturbation.eps=0.12", "perturbation.eps=0.12 is not among perturbation.radii"),
        ("perturbation.models.mlp=nowhere/best.ckpt", "no checkpoint at nowhere/best.ckpt"),
        ("perturbation.images=0", "perturbation.images must be a whole number from 1 to 10000"),
    ],
)
def test_bad_settings_are_refused_by_name(tmp_path, mnist_root, override, named):
    out = _measure(tmp_path, mnist_root, override)
    assert out.returncode == 2 and named in out.stderr, out.stderr[-2000:]


def test_a_checkpoint_is_measured_and_its_examples_logged(tmp_path, mnist_root):
    """A tiny model saved as a training checkpoint would be: measured on 30 images, one MLflow run."""
    from mlflow.tracking import MlflowClient

    train = run_module(
        "pipeline.stages.train",
        "data.train_subset=500",
        "trainer.max_epochs=1",
        "tracking.log_model=false",
        "robustness.after_training=false",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"data.root={mnist_root}",
        f"run_dir={tmp_path}/mlp",
        cwd=tmp_path,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    out = _measure(
        tmp_path,
        mnist_root,
        f"perturbation.models.mlp={tmp_path}/mlp/checkpoints/best.ckpt",
        "perturbation.images=30",
        "perturbation.radii=[0.1,0.3]",
        "perturbation.pgd_steps=5",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fooled within L-inf 0.1" in out.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id], "tags.model = 'mlp'")
    run = next(r for r in runs if "perturbation/clean_acc" in r.data.metrics)
    assert run.data.params["perturbation.source"].endswith("best.ckpt")
    examples = json.loads((tmp_path / "run" / "perturbation" / "examples.json").read_text())
    assert len(examples["examples"]) == 3 and len(bytes.fromhex(examples["examples"][0]["original"])) == 784
    assert [a.path for a in client.list_artifacts(run.info.run_id, "perturbation")] == ["perturbation/examples.json"]
