"""Robust training parts: Wong's small net, TRADES, eps warm-up, the cyclic schedule, and the
literature evaluation's sanity checks and shard merging."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from pipeline.nn.builders import build_model
from pipeline.nn.models import SmallConv, count_parameters
from pipeline.robustness.literature import attack_strength_table, pgd_accuracy, sanity_checks
from pipeline.robustness.trades import trades_loss, trades_perturb
from pipeline.stages.remedy import merge_shards
from pipeline.training.module import Classifier

ADAM_CYCLIC = {"name": "adam", "lr": 0.005, "scheduler": "cyclic"}
SMALL = {"name": "smallconv", "arch": "smallconv", "channels": [16, 32], "hidden": 100}


def test_smallconv_is_wongs_mnist_net():
    model = build_model(SMALL)
    assert isinstance(model, SmallConv)
    # conv 1->16 k4 (272) + conv 16->32 k4 (8,224) + fc 1568->100 (156,900) + fc 100->10 (1,010)
    assert count_parameters(model) == 166_406
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_trades_perturbation_stays_in_the_ball_and_raises_the_kl(small_model, eval_batch):
    x, _ = eval_batch
    x = x[:128]
    torch.manual_seed(0)
    x_adv = trades_perturb(small_model, x, eps=0.1, steps=10)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        clean = F.softmax(small_model(x), 1)
        noise = (x + 0.1 * torch.sign(torch.randn_like(x))).clamp(0, 1)
        kl_adv = F.kl_div(F.log_softmax(small_model(x_adv), 1), clean, reduction="batchmean")
        kl_noise = F.kl_div(F.log_softmax(small_model(noise), 1), clean, reduction="batchmean")
    assert kl_adv > 2 * kl_noise  # a real maximisation, far above random corners of the same ball


def test_trades_loss_is_cross_entropy_plus_beta_kl():
    torch.manual_seed(0)
    clean, adv, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = F.cross_entropy(clean, y)
    assert torch.isclose(trades_loss(clean, adv, y, beta=0.0), ce)
    assert torch.isclose(trades_loss(clean, clean, y, beta=6.0), ce, atol=1e-6)  # no gap, no penalty
    kl = F.kl_div(F.log_softmax(adv, 1), F.softmax(clean, 1), reduction="batchmean")
    assert torch.isclose(trades_loss(clean, adv, y, beta=6.0), ce + 6.0 * kl, atol=1e-5)


def _attached(module: Classifier, **trainer) -> Classifier:
    module._trainer = SimpleNamespace(**trainer)  # only the counters the code reads
    return module


def test_cyclic_learning_rate_is_wongs_triangle():
    module = _attached(Classifier(SMALL, ADAM_CYCLIC), estimated_stepping_batches=100)
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0
    assert max(lrs) == pytest.approx(0.005) and lrs.index(max(lrs)) == 40
    assert lrs[99] == pytest.approx(0.005 / 60)
    assert all(b >= a for a, b in itertools.pairwise(lrs[:41])) and all(b <= a for a, b in itertools.pairwise(lrs[40:]))


def test_eps_warms_up_linearly_then_holds():
    adversarial = {"method": "pgd", "eps": 0.3, "steps": 3, "step_size": 0.1, "warmup_epochs": 2}
    module = _attached(Classifier(SMALL, ADAM_CYCLIC, adversarial), num_training_batches=10, current_epoch=0)
    assert module.adversarial_eps(0) == 0.0
    assert module.adversarial_eps(5) == pytest.approx(0.075)
    module._trainer.current_epoch = 1
    assert module.adversarial_eps(0) == pytest.approx(0.15)
    module._trainer.current_epoch = 3
    assert module.adversarial_eps(7) == pytest.approx(0.3)
    # the configured step shrinks with eps, so early steps stay inside the small ball
    module._trainer.current_epoch = 0
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    assert (module.adversarial_batch(x, y, 5) - x).abs().max() <= 0.075 + 1e-6


def test_more_steps_and_restarts_never_raise_pgd_accuracy(small_model, eval_batch):
    x, y = eval_batch[0][:200], eval_batch[1][:200]
    rows = attack_strength_table(small_model, x, y, eps=0.2, settings=((5, 1), (20, 1), (20, 4)))
    accs = [row["pgd"] for row in rows]
    assert accs[0] >= accs[1] >= accs[2]
    assert pgd_accuracy(small_model, x, y, eps=0.0) > accs[1] + 0.5  # the attack does something at all


def test_sanity_checks_flag_each_failure():
    curve = [{"eps": e, "pgd": a} for e, a in ((0.0, 0.99), (0.1, 0.97), (0.3, 0.9), (0.5, 0.01))]
    strength = [{"steps": 10, "restarts": 1, "pgd": 0.92}, {"steps": 50, "restarts": 10, "pgd": 0.90}]
    auto = {"apgd-ce": 0.91, "apgd-t": 0.89, "fab-t": 0.89, "square": 0.889, "final": 0.889}
    ok = sanity_checks(curve, strength, auto, square_alone=0.93)
    assert ok["passed"] and ok["square_not_stronger"] and ok["white_box_acc"] == 0.89
    assert ok["square_extra_fooled"] == pytest.approx(0.001)  # reported: the attacks complement each other

    masked = [{"eps": e, "pgd": a} for e, a in ((0.0, 0.99), (0.1, 0.97), (0.3, 0.98), (0.5, 0.40))]
    bad = sanity_checks(masked, strength[::-1], {**auto, "square": 0.80}, square_alone=0.85)
    assert not bad["monotone_in_eps"] and not bad["near_zero_at_max_eps"]
    assert not bad["stronger_attack_never_helps"] and not bad["square_not_stronger"] and not bad["passed"]
    assert "square_not_stronger" not in sanity_checks(curve, strength, auto)  # Square alone not run: no verdict


def test_shards_merge_weighted_by_image_count():
    a = {"acc": 0.9, "images": 600, "seconds": 10.0, "by_attack": {"apgd-ce": 0.95, "final": 0.9}}
    b = {"acc": 0.8, "images": 400, "seconds": 5.0, "by_attack": {"apgd-ce": 0.85, "final": 0.8}}
    merged = merge_shards([a, b])
    assert merged["images"] == 1000 and merged["shards"] == 2 and merged["seconds"] == 15.0
    assert merged["acc"] == pytest.approx(0.86) and merged["by_attack"]["apgd-ce"] == pytest.approx(0.91)


def test_gather_judges_square_alone_against_the_white_box_attacks(tmp_path):
    import json

    from pipeline.stages.remedy import gather, part_path

    def write(part, data, shard=None):
        path = part_path(tmp_path, part, 0.3, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"eps": 0.3, "seconds": 1.0, **data}))

    curve = [{"eps": 0.0, "pgd": 0.99}, {"eps": 0.5, "pgd": 0.0}]
    write("sanity", {"images": 1000, "eps_curve": curve, "strength": [{"steps": 10, "restarts": 1, "pgd": 0.9}]})
    auto = {"apgd-ce": 0.92, "apgd-t": 0.91, "fab-t": 0.90, "square": 0.88, "final": 0.88}
    write("autoattack", {"acc": 0.88, "images": 1000, "by_attack": auto})
    checks = gather(tmp_path)["checks_eps0.3"]
    assert "square_not_stronger" not in checks and checks["passed"]  # no verdict before Square alone ran
    write("square", {"acc": 0.95, "images": 500})
    write("square", {"acc": 0.93, "images": 500}, shard=(500, 1000))
    checks = gather(tmp_path)["checks_eps0.3"]
    assert checks["square_alone_acc"] == pytest.approx(0.94) and checks["white_box_acc"] == 0.90
    assert checks["square_not_stronger"] and checks["square_extra_fooled"] == pytest.approx(0.02)
