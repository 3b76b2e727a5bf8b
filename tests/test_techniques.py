"""Claim 13: the MLP's initialisations and batch norm, the untrained net's gradient norms, a run that
diverges on purpose, and the verdict rules fed numbers on both sides of their lines."""

import json
import math

import pytest
import torch
from conftest import run_module
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pipeline.claims.techniques import (
    PRESET,
    batch_norm_verdict,
    dropout_verdict,
    epochs_to_target,
    init_verdict,
    stalled,
    techniques_claim,
)
from pipeline.common import metric_names as names
from pipeline.config.settings import CONF_DIR, ConfigError, compose, validate
from pipeline.nn.builders import build_model, build_optimizer
from pipeline.nn.init_gradients import layer_gradient_norms
from pipeline.nn.models import MLP

LN10 = math.log(10)


def _weights(model: MLP) -> list[torch.Tensor]:
    return [layer.weight.detach() for layer in model.linear_layers()]


def test_each_initialisation_draws_its_own_spread():
    torch.manual_seed(0)
    normal, he, glorot = (MLP(hidden=(512, 512), init=i) for i in ("normal", "he", "glorot"))
    assert all(abs(float(w.std()) - 0.01) < 0.001 for w in _weights(normal))
    first, second = _weights(he)[:2]
    assert abs(float(first.std()) - math.sqrt(2 / 784)) < 0.002  # N(0, 2 / fan-in)
    assert abs(float(second.std()) - math.sqrt(2 / 512)) < 0.003
    w = _weights(glorot)[1]  # uniform in +-sqrt(6 / (fan-in + fan-out))
    assert float(w.abs().max()) <= math.sqrt(6 / 1024) and float(w.abs().max()) > 0.95 * math.sqrt(6 / 1024)
    assert all(float(layer.bias.abs().max()) == 0 for layer in he.linear_layers())
    default = MLP(hidden=(512,))  # PyTorch's own: uniform within 1 / sqrt(fan-in), biases too
    assert float(default.linear_layers()[0].bias.abs().max()) > 0
    with pytest.raises(ValueError, match="unknown init 'lecun'"):
        MLP(init="lecun")


def test_batch_norm_sits_before_each_hidden_activation():
    model = build_model({"arch": "mlp", "hidden": [32, 16], "activation": "relu", "batch_norm": True, "dropout": 0.2})
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == [
        "Normalize", "Flatten",
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear",
    ]  # fmt: skip


def test_plain_sgd_has_no_momentum_and_no_nesterov():
    params = [torch.nn.Parameter(torch.zeros(2))]
    plain = build_optimizer(params, {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0})
    assert plain.defaults["momentum"] == 0 and plain.defaults["nesterov"] is False
    assert build_optimizer(params, {"name": "sgd", "lr": 0.1}).defaults["nesterov"] is True


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.init=lecun", "model.init='lecun' is not valid; choose one of default, normal, glorot, he"),
        ("model.batch_norm=3", "model.batch_norm must be true or false"),
        ("+optim.on_divergence=ignore", "optim.on_divergence='ignore' is not valid; choose one of fail, stop"),
    ],
)
def test_bad_settings_are_refused_by_name(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(compose([override]))


def test_the_preset_is_the_factorial_on_a_deep_mlp_with_plain_sgd():
    cfg = compose([f"experiment={PRESET}"])
    validate(cfg)
    assert list(cfg.model.hidden) == [256] * 6 and cfg.optim.name == "sgd"
    assert cfg.optim.momentum == 0 and cfg.optim.weight_decay == 0 and cfg.optim.scheduler == "none"
    assert cfg.optim.on_divergence == "stop" and cfg.evaluate.init_gradients is True
    preset = OmegaConf.load(CONF_DIR / "experiment" / f"{PRESET}.yaml")
    sweep = preset.hydra.sweeper.params
    assert preset.hydra.launcher.n_jobs == 2  # two jobs at a time, one core each (reproducible mode)
    assert [len(str(sweep[k]).split(",")) for k in ("model.init", "model.batch_norm", "model.dropout")] == [3, 2, 2]
    low, high = sorted(float(v) for v in str(sweep["optim.lr"]).split(","))
    assert high == pytest.approx(10 * low)


def test_untrained_gradients_vanish_under_the_small_gaussian():
    images, labels = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8), torch.randint(0, 10, (64,))
    norms = {}
    for init in ("normal", "he"):
        torch.manual_seed(0)
        norms[init] = layer_gradient_norms(MLP(hidden=(256,) * 6, init=init), images, labels)
    assert sorted(norms["he"]) == sorted(["loss", *(f"layer{i}" for i in range(1, 8))])
    assert abs(norms["normal"]["loss"] - LN10) < 0.01  # the signal dies on the way up: a uniform guess
    assert norms["normal"]["layer1"] < 1e-4 and norms["normal"]["layer1"] < norms["he"]["layer1"] / 1e4  # and down


def test_epochs_to_target_and_stall():
    assert epochs_to_target({"val/acc": [0.5, 0.969, 0.97, 0.99]}) == 3
    assert epochs_to_target({"val/acc": [0.5, 0.969]}) is None
    assert stalled({"train/loss": [LN10 - 0.04, 0.5]})
    assert not stalled({"train/loss": [LN10 - 0.06, 2.3]})
    assert not stalled({"train/loss": []})


def test_init_verdict_needs_the_stall_and_both_modern_inits():
    reaches = {"normal": None, "glorot": 5, "he": 3}
    assert init_verdict({"normal": True, "glorot": False, "he": False}, reaches)
    assert not init_verdict({"normal": False, "glorot": False, "he": False}, reaches)
    assert not init_verdict({"normal": True, "glorot": False, "he": False}, reaches | {"glorot": None})


def test_batch_norm_verdict_needs_fewer_epochs_and_the_10x_rate():
    plain, normed, fast = {"glorot": 5, "he": 4}, {"glorot": 2, "he": 2}, {"glorot": 1, "he": 1}
    assert batch_norm_verdict(plain, normed, fast)
    assert batch_norm_verdict({"glorot": None, "he": 4}, normed, fast)  # never counts as slower
    assert not batch_norm_verdict(plain, {"glorot": 2, "he": 4}, fast)  # a tie is not fewer
    assert not batch_norm_verdict(plain, normed, {"glorot": 1, "he": None})  # no longer trains at 10x


def test_dropout_verdict_is_the_mean_change_in_test_error():
    assert dropout_verdict([(0.02, 0.018), (0.03, 0.031)])  # -0.2 and +0.1 points: lower on average
    assert not dropout_verdict([(0.02, 0.022), (0.03, 0.029)])
    assert not dropout_verdict([])


def _job(init, bn, dropout, lr, accs, losses, test_acc, diverged=None):
    metrics = {"test/acc": test_acc, **{f"init_grad/layer{i}": 10.0**-i for i in range(1, 8)}}
    if diverged is not None:
        metrics["train/diverged_step"] = diverged
    return {
        "status": "FINISHED",
        "params": {
            "model.init": init,
            "model.batch_norm": str(bn),
            "model.dropout": str(dropout),
            "optim.lr": str(lr),
            "trainer.max_epochs": "8",
        },
        "metrics": metrics,
        "history": {"val/acc": accs, "train/loss": losses},
    }


def _results(normal_loss: float, bn_epochs: int, dropout_gain: float) -> dict:
    jobs = []
    for init in ("normal", "glorot", "he"):
        for bn in (False, True):
            for dropout in (0.0, 0.2):
                for lr in (0.05, 0.5):
                    if init == "normal" and not bn:
                        jobs.append(_job(init, bn, dropout, lr, [0.11] * 8, [normal_loss] * 8, 0.11))
                    elif lr == 0.5 and not bn:
                        jobs.append(_job(init, bn, dropout, lr, [0.1], [float("nan")], 0.098, diverged=17))
                    else:
                        epochs = bn_epochs if bn else 4
                        accs = [0.9] * (epochs - 1) + [0.975] * (9 - epochs)
                        error = 0.025 - (dropout_gain if dropout else 0.0)
                        jobs.append(_job(init, bn, dropout, lr, accs, [0.3] * 8, 1 - error))
    return {PRESET: {"jobs": jobs}}


def test_claim_holds_when_all_three_rules_do():
    claim = techniques_claim(_results(normal_loss=2.30, bn_epochs=2, dropout_gain=0.002))
    assert claim.verdict == "holds"
    assert "N(0, 0.01²) stalls (first-epoch loss 2.300" in claim.measured
    assert "where without it Glorot and He diverged" in claim.measured
    assert len(claim.details[0].rows) == 24
    assert "diverged at step 17" in [row[6] for row in claim.details[0].rows]


def test_claim_names_the_rules_that_fail():
    assert techniques_claim(_results(2.30, 2, -0.002)).verdict == "holds for initialisation and batch norm only"
    assert techniques_claim(_results(1.5, 4, -0.002)).verdict == "does not hold"
    assert techniques_claim({}).verdict == "not run"


def test_a_partial_sweep_shows_its_jobs_without_a_verdict():
    """A tiny sweep (two cells): the table and the figure from what ran, no verdict on cells that did not."""
    jobs = [j for j in _results(2.30, 2, 0.002)[PRESET]["jobs"] if j["params"]["optim.lr"] == "0.5"][:2]
    claim = techniques_claim({PRESET: {"jobs": jobs}})
    assert claim.verdict == "not run" and "the sweep is incomplete (2 jobs)" in claim.measured
    assert len(claim.details[0].rows) == 2 and claim.details[-1].key == "techniques"
    assert list(claim.data["gradients"]) == ["N(0, 0.01²)"] and len(claim.data["curves"]) == 1


def test_a_run_that_diverges_on_purpose_ends_finished_with_its_step(tmp_path, mnist_root):
    """optim.on_divergence=stop: the loss goes to infinity at a huge rate, training stops there, and the run
    keeps the step and is evaluated (a guess); the default would fail the run instead."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "optim=sgd",
        "optim.lr=1000",
        "optim.momentum=0",
        "optim.scheduler=none",
        "+optim.on_divergence=stop",
        "data.train_subset=2000",
        "trainer.max_epochs=2",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"run_dir={tmp_path}/run",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "training stopped there (optim.on_divergence=stop)" in out.stdout
    run = MlflowClient(uri).get_run(json.loads((tmp_path / "run" / "run.json").read_text())["run_id"])
    assert run.info.status == "FINISHED"
    step = run.data.metrics[names.mlflow_name(names.TRAIN_DIVERGED_STEP)]
    assert 1 <= step <= 16  # within the first epoch of 16 steps
    assert run.data.metrics["test/acc"] < 0.2
