"""Configuration: composing conf/, loading params.yaml, and checking values.

Everything here imports only OmegaConf/Hydra, so a bad value is reported
before torch or Lightning is imported (those take seconds to load).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, ListConfig, OmegaConf

# The robustness registries' names, torch-free: a bad name is reported before torch loads.
from pipeline.robustness.names import ATTACKS, CORRUPTIONS, SEVERITY_SHIFTS

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"

ARCHS = ("mlp", "cnn", "smallconv")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
INITS = ("default", "normal", "glorot", "he")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "cyclic", "onecycle")
SOURCES = ("auto", "torchvision", "pypi", "local")
ADVERSARIAL = ("none", *ATTACKS, "trades")  # adversarial training uses the attacks, or TRADES


class ConfigError(ValueError):
    """A configuration value is invalid; the message names it and the fix."""


def preset_slot(overrides: Sequence[str]) -> list[str]:
    """`+experiment=X` (the older spelling) means `experiment=X`: the slot is in conf/config.yaml's defaults."""
    return [o[1:] if o.startswith("+experiment=") else o for o in overrides]


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose conf/ exactly as DVC does when it writes params.yaml."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = hydra_compose(config_name=config_name, overrides=preset_slot(overrides))
    OmegaConf.resolve(cfg)
    return cfg


def severity_grids(profile: str = "full") -> dict[str, tuple[float, ...]]:
    """The severity grids a robustness profile sweeps (conf/robustness/<profile>.yaml)."""
    severity = compose([f"robustness={profile}"]).robustness.severity
    return {name: tuple(float(v) for v in grid) for name, grid in severity.items()}


def load_params(path: str | Path) -> DictConfig:
    """Load a composed configuration file (params.yaml) and check it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist. Regenerate it from conf/ with "
            f"`python -m pipeline.stages.config > {path}` (or `dvc exp run`, which composes it)."
        )
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} must hold a mapping, found {type(cfg).__name__}.")
    validate(cfg)
    return cfg


def _positive(cfg: DictConfig, key: str, kind: type) -> None:
    value = OmegaConf.select(cfg, key)
    accepted = (int, float) if kind is float else kind  # optim.lr=1 means 1.0
    if isinstance(value, bool) or not isinstance(value, accepted) or cast(float, value) <= 0:
        raise ConfigError(
            f"{key} must be a positive {kind.__name__}, got {value!r}. Set it on the command line, e.g. `{key}=...`."
        )


def _choice(cfg: DictConfig, key: str, allowed: Sequence[str]) -> None:
    value = OmegaConf.select(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(allowed)}.")


def _unit_interval(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1] (pixel scale), got {value!r}.")


def _list(value, key: str, example: str) -> list:
    if not isinstance(value, (list, ListConfig)):
        raise ConfigError(f"{key} must be a list, e.g. `{key}=[{example}]`, got {value!r}.")
    return list(value)


def _names(value, key: str, allowed: Sequence[str]) -> None:
    value = _list(value, key, ",".join(allowed[:2]))
    unknown = [v for v in value if v not in allowed]
    if unknown or not value:
        raise ConfigError(f"{key} has unknown or no entries {unknown or list(value)}; valid: {', '.join(allowed)}.")


def _validate_robustness(cfg: DictConfig) -> None:
    r = cfg.robustness
    for key in ("robustness.eps", "robustness.autoattack.eps"):
        for eps in _list(OmegaConf.select(cfg, key), key, "0.1,0.3"):
            if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0.0 <= eps <= 1.0:
                raise ConfigError(f"{key} holds {eps!r}; every eps must be in [0, 1] (pixel scale).")
    _names(r.attacks, "robustness.attacks", ATTACKS)
    _names(r.corruptions, "robustness.corruptions", CORRUPTIONS)
    if not isinstance(r.get("severity"), DictConfig):
        raise ConfigError(
            f"robustness.severity must map shifts to severity lists (see conf/robustness/), got {r.get('severity')!r}."
        )
    _names(list(r.severity), "robustness.severity", SEVERITY_SHIFTS)
    _positive(cfg, "robustness.batch_size", int)
    _positive(cfg, "robustness.pgd.steps", int)
    for key in ("n_images", "ood.n_images"):
        value = OmegaConf.select(r, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"robustness.{key} must be null (all) or a positive integer, got {value!r}.")
    mnist_c_dir = r.get("mnist_c_dir")
    if mnist_c_dir is not None and not Path(str(mnist_c_dir)).is_dir():
        raise ConfigError(
            f"robustness.mnist_c_dir={mnist_c_dir} is not a folder; point it at the unzipped official "
            f"MNIST-C release (<dir>/<corruption>/test_images.npy) or set it to null for the built-in port."
        )
    if mnist_c_dir is not None:
        missing = [c for c in r.corruptions if not (Path(str(mnist_c_dir)) / c / "test_images.npy").is_file()]
        if missing:
            raise ConfigError(
                f"robustness.mnist_c_dir={mnist_c_dir} has no {missing[0]}/test_images.npy (missing: "
                f"{', '.join(missing)}); list only the corruptions it holds in robustness.corruptions."
            )
    n = r.autoattack.n_images
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"robustness.autoattack.n_images must be 0 (off) or a positive integer, got {n!r}.")


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for values that would fail later, or worse, silently mislead."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        _validate(cfg)
    except InterpolationResolutionError as err:  # e.g. `optim.lr=${nope}`
        raise ConfigError(
            f"{err.full_key}: {str(err).splitlines()[0]}. Give a plain value, "
            f"or an interpolation that resolves (`${{data.batch_size}}`)."
        ) from None


def check_group_overrides(overrides: Sequence[str]) -> None:
    """Hydra refuses a config group given a non-name (`model=0`, `~model=1`) with a bare
    ValueError and a traceback; say it plainly first. Other override errors Hydra reports itself."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("-")])
    except HydraException:
        return
    groups = {str(p.relative_to(CONF_DIR)) for p in CONF_DIR.rglob("*") if p.is_dir()}
    for o in parsed:
        if o.is_sweep_override() or (o.key_or_group not in groups and not o.key_or_group.startswith("hydra/")):
            continue
        value = o.value()
        if isinstance(value, dict) or (o.is_force_add() and not o.is_delete()):
            continue
        if (o.is_delete() and value is not None and not isinstance(value, str)) or (
            not o.is_delete()
            and not isinstance(value, str)
            and not (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            choices = sorted(p.stem for p in (CONF_DIR / o.key_or_group).glob("*.yaml"))
            raise ConfigError(
                f"`{o.input_line}`: {o.key_or_group} is a config group; give the name of one of its "
                f"files{': ' + ', '.join(choices) if choices else ''}."
            )


def _system_metrics(cfg: DictConfig) -> None:
    """tracking.system_metrics is on or off; its interval a positive number of seconds."""
    if not isinstance(cfg.tracking.get("system_metrics", True), bool):
        raise ConfigError(
            f"tracking.system_metrics must be true or false, got {cfg.tracking.system_metrics!r}; "
            "`tracking.system_metrics=false` turns the runs' system metrics off."
        )
    interval = cfg.tracking.get("system_metrics_interval", 2)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ConfigError(
            f"tracking.system_metrics_interval must be a positive number of seconds, got {interval!r}; "
            "e.g. `tracking.system_metrics_interval=5`."
        )


def _validate(cfg: DictConfig) -> None:
    for section in ("data", "model", "optim", "trainer", "tracking"):
        if not isinstance(cfg.get(section), DictConfig):
            raise ConfigError(f"The configuration has no `{section}` section; compose it from conf/.")
    reproducible = cfg.get("reproducible", False)
    if not isinstance(reproducible, bool):
        raise ConfigError(
            f"reproducible={reproducible!r} is not true or false; set reproducible=true (the same bytes on any "
            f"x86-64 CPU) or reproducible=false (each CPU's fastest kernels)."
        )
    _positive(cfg, "data.batch_size", int)
    _positive(cfg, "data.eval_batch_size", int)
    _positive(cfg, "optim.lr", float)
    _positive(cfg, "trainer.max_epochs", int)
    _choice(cfg, "data.source", SOURCES)
    _choice(cfg, "model.arch", ARCHS)
    _choice(cfg, "optim.name", OPTIMIZERS)
    _choice(cfg, "optim.scheduler", SCHEDULERS)
    if cfg.optim.get("on_divergence") is not None:  # fail (the default): a diverged run is an error
        _choice(cfg, "optim.on_divergence", ("fail", "stop"))
    if cfg.model.arch == "mlp":
        _choice(cfg, "model.activation", ACTIVATIONS)
        if cfg.model.get("init") is not None:
            _choice(cfg, "model.init", INITS)
        if not isinstance(cfg.model.get("batch_norm", False), bool):
            raise ConfigError(f"model.batch_norm must be true or false, got {cfg.model.batch_norm!r}.")
        hidden = cfg.model.get("hidden")
        if not isinstance(hidden, ListConfig) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden
        ):
            raise ConfigError(
                f"model.hidden must be a list of positive widths, e.g. `model.hidden=[128,64]`, got {hidden!r}."
            )
    val_size = cfg.data.val_size
    if not isinstance(val_size, int) or not 0 < val_size < 60000:
        raise ConfigError(f"data.val_size must be an integer in 1..59999, got {val_size!r}.")
    subset = cfg.data.train_subset
    if subset is not None and (not isinstance(subset, int) or not 0 < subset <= 60000 - val_size):
        raise ConfigError(f"data.train_subset must be null or an integer in 1..{60000 - val_size}, got {subset!r}.")
    epoch_size = cfg.data.get("epoch_size")
    if epoch_size is not None and (not isinstance(epoch_size, int) or epoch_size <= 0):
        raise ConfigError(f"data.epoch_size must be null or a positive integer, got {epoch_size!r}.")
    if cfg.data.source == "local" and not cfg.data.local_dir:
        raise ConfigError("data.source=local needs data.local_dir=<folder with the four MNIST IDX files>.")
    if cfg.tracking.get("lock_timeout_s") is not None:
        _positive(cfg, "tracking.lock_timeout_s", float)
    for key in ("outage_wait_s", "outage_report_s"):
        if cfg.tracking.get(key) is not None:
            _positive(cfg, f"tracking.{key}", float)
    _system_metrics(cfg)
    register = cfg.tracking.get("register", "auto")
    if not (register == "auto" or isinstance(register, bool)):
        raise ConfigError(f"tracking.register must be auto, true or false, got {register!r}.")
    if "adversarial" in cfg:
        _choice(cfg, "adversarial.method", ADVERSARIAL)
        _unit_interval(cfg, "adversarial.eps")
    if "robustness" in cfg:
        _validate_robustness(cfg)
    dropout = cfg.model.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout!r}.")
    smoothing = cfg.optim.get("label_smoothing", 0.0)
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0.0 <= smoothing < 1.0:
        raise ConfigError(f"optim.label_smoothing must be in [0, 1), e.g. 0.1, got {smoothing!r}.")
