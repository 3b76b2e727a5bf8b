import pytest
import torch
import torch.nn.functional as F

from pipeline.nn.builders import build_model, load_checkpoint
from pipeline.nn.models import CNN, MLP, count_parameters


def test_seed_mlp_has_exactly_109386_parameters():
    model = MLP(hidden=(128, 64), activation="relu")
    assert count_parameters(model) == 109_386
    assert [tuple(layer.weight.shape) for layer in model.linear_layers()] == [(128, 784), (64, 128), (10, 64)]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "identity"])
def test_mlp_shapes_for_every_activation(activation):
    out = MLP(activation=activation)(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)


def test_width_and_depth_are_configurable():
    model = build_model({"arch": "mlp", "hidden": [32, 32, 32], "activation": "tanh"})
    assert len(model.linear_layers()) == 4
    assert count_parameters(model) == 784 * 32 + 32 + 2 * (32 * 32 + 32) + 32 * 10 + 10


def test_linear_stack_is_one_affine_map():
    """Without a nonlinearity, the three layers multiply into one 784x10 map."""
    torch.manual_seed(0)
    model = MLP(activation="identity").eval()
    x = torch.rand(64, 1, 28, 28)
    weight, bias = torch.eye(784), torch.zeros(784)
    for layer in model.linear_layers():
        weight, bias = layer.weight @ weight, layer.weight @ bias + layer.bias
    normalized = (x.flatten(1) - 0.1307) / 0.3081
    collapsed = normalized @ weight.T + bias
    assert weight.shape == (10, 784)
    torch.testing.assert_close(collapsed, model(x), atol=1e-5, rtol=1e-5)


def test_cnn_shapes_and_batchnorm():
    model = CNN()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_unknown_activation_is_rejected_with_choices():
    with pytest.raises(ValueError, match="relu, sigmoid, tanh, identity"):
        MLP(activation="gelu")


def test_checkpoint_round_trip_loads_weights_only(tmp_path):
    from pipeline.training.module import Classifier

    module = Classifier({"arch": "mlp", "hidden": [16], "activation": "relu"}, {"name": "adam", "lr": 1e-3})
    path = tmp_path / "m.ckpt"
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    model = load_checkpoint(path)
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(model(x), module.net.eval()(x))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": Exploit(), "state_dict": {}}, path)
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported global"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_training_batches_stay_in_the_eps_ball(method):
    from pipeline.training.module import Classifier

    torch.manual_seed(0)
    module = Classifier(
        {"arch": "mlp", "hidden": [32], "activation": "relu"},
        {"name": "adam", "lr": 1e-3},
        {"method": method, "eps": 0.3, "steps": 3, "step_size": None},
    )
    module.train()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    adv = module.adversarial_batch(x, y)
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.3 + 1e-6 and (adv - x).abs().max() > 0.1
    assert module.training and all(p.grad is None for p in module.parameters())
    clean = Classifier({"arch": "mlp", "hidden": [32], "activation": "relu"}, {"name": "adam", "lr": 1e-3})
    assert clean.adversarial_batch(x, y) is x


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_training_loss_is_cross_entropy_with_the_configured_label_smoothing(smoothing):
    from types import SimpleNamespace

    from pipeline.training.module import Classifier

    torch.manual_seed(0)
    module = Classifier(
        {"arch": "mlp", "hidden": [32], "activation": "relu"},
        {"name": "adam", "lr": 1e-3, "label_smoothing": smoothing},
    )
    # What a mid-epoch training step reads from its trainer.
    module._trainer = SimpleNamespace(log_every_n_steps=50, num_training_batches=10**6, current_epoch=0)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    loss = module.training_step((x, y), 1)
    log_p = torch.log_softmax(module.net(x), 1)
    # (1 - s) on the label's log-probability, s spread evenly over all ten classes.
    expected = -((1 - smoothing) * log_p.gather(1, y[:, None]).squeeze(1) + smoothing * log_p.mean(1)).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    if smoothing:
        assert not torch.allclose(loss, F.cross_entropy(module.net(x), y), atol=1e-4)
