import pytest
from conftest import PROJECT, run_module, run_module_noting_imports
from omegaconf import OmegaConf

from pipeline.config.settings import ConfigError, compose, load_params, validate


def test_params_yaml_is_the_composed_default():
    """params.yaml must not drift from conf/: regenerate with `python -m pipeline.stages.config > params.yaml`."""
    committed = OmegaConf.to_container(OmegaConf.load(PROJECT / "params.yaml"))
    assert committed == OmegaConf.to_container(compose()), (
        "params.yaml differs from conf/; run `python -m pipeline.stages.config > params.yaml`"
    )


@pytest.mark.parametrize(
    "model, arch, activation", [("mlp", "mlp", "relu"), ("linear", "mlp", "identity"), ("cnn", "cnn", None)]
)
def test_every_model_choice_composes(model, arch, activation):
    cfg = compose([f"model={model}"])
    validate(cfg)
    assert cfg.model.arch == arch and cfg.model.get("activation") == activation
    assert cfg.tracking.registered_model == f"mnist-{model}"


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
def test_every_trainer_choice_composes(trainer):
    cfg = compose([f"trainer={trainer}"])
    validate(cfg)
    assert cfg.trainer.max_epochs > 0


def test_width_override_reaches_the_model():
    assert list(compose(["model.hidden=[256,128,64]"]).model.hidden) == [256, 128, 64]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.batch_size=0", "data.batch_size must be a positive int, got 0"),
        ("data.batch_size=-8", "data.batch_size must be a positive int, got -8"),
        ("optim.lr=0.0", "optim.lr must be a positive float"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be a positive int"),
        ("model.activation=gelu", "model.activation='gelu' is not valid; choose one of relu, sigmoid, tanh, identity"),
        ("optim.name=lbfgs", "choose one of adam, adamw, sgd"),
        ("data.source=ftp", "choose one of auto, torchvision, pypi, local"),
        ("data.val_size=60000", "data.val_size must be an integer in 1..59999"),
    ],
)
def test_bad_values_are_named_with_the_fix(override, message):
    with pytest.raises(ConfigError) as err:
        validate(compose([override]))
    assert message in str(err.value)


def test_missing_params_file_says_how_to_make_it(tmp_path):
    with pytest.raises(ConfigError, match=r"python -m pipeline.stages.config >"):
        load_params(tmp_path / "params.yaml")


def test_config_error_on_the_command_line_comes_before_torch_is_imported():
    out, imported = run_module_noting_imports("pipeline.stages.train", "data.batch_size=-1")
    assert out.returncode != 0 and "data.batch_size must be a positive int, got -1" in out.stdout + out.stderr
    assert not imported, imported


def test_unknown_group_choice_lists_the_options():
    out = run_module("pipeline.stages.train", "model=resnet", timeout=120)
    assert out.returncode != 0
    assert "model/resnet" in out.stderr and "cnn" in out.stderr and "linear" in out.stderr


def test_help_answers_without_importing_torch():
    out, imported = run_module_noting_imports("pipeline.stages.train", "--help")
    assert out.returncode == 0 and "model: cnn, linear, mlp" in out.stdout
    assert not imported, imported


def test_config_name_lists_match_the_robustness_registries():
    from pipeline.config import settings as config
    from pipeline.robustness.attacks import ATTACKS
    from pipeline.robustness.corruptions import CORRUPTIONS
    from pipeline.robustness.shifts import SEVERITY_SHIFTS

    assert set(config.ATTACKS) == set(ATTACKS)
    assert list(config.CORRUPTIONS) == list(CORRUPTIONS)
    assert set(config.SEVERITY_SHIFTS) == set(SEVERITY_SHIFTS)
    assert list(compose().robustness.corruptions) == list(CORRUPTIONS)  # the full profile runs all 15


def test_config_choices_match_the_builders():
    from pipeline.config import settings as config
    from pipeline.nn import builders, models

    assert list(config.ARCHS) == list(builders.MODELS)
    assert list(config.ACTIVATIONS) == list(models.ACTIVATIONS)
    assert list(config.INITS) == list(models.INITS)
    assert list(config.OPTIMIZERS) == list(builders.OPTIMIZERS)
    assert list(config.SCHEDULERS) == list(builders.SCHEDULERS)


def test_presets_fill_the_experiment_slot_and_the_older_plus_spelling_still_works():
    slot = compose(["experiment=claim_mlp"])
    assert slot.robustness.after_training is True  # the preset's own robustness choice (claims)
    assert OmegaConf.to_yaml(compose(["+experiment=claim_mlp"])) == OmegaConf.to_yaml(slot)
    assert "after_training: false" in OmegaConf.to_yaml(compose()).replace("after_training: False", "")
    for spelling in ("experiment=cnn", "+experiment=cnn"):  # the command line, through Hydra's own parser
        out = run_module("pipeline.stages.train", spelling, "--cfg", "job", "--package", "model", timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "arch: cnn" in out.stdout
