"""Command-line overrides checked against conf/: a typo is refused with the closest valid name.

Hydra refuses an unknown key or group (`modle=cnn`) but suggests `+modle=cnn`, and a key added
with `+` inside one of the project's own sections (`+model.hiden=3`) is taken and ignored by
the code: a silent misconfiguration. Both are refused here, naming the closest valid key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from omegaconf import DictConfig

from pipeline.config.settings import CONF_DIR, ConfigError, compose

# The sections whose keys the code reads: a key added to them must be one the code knows.
PROJECT_SECTIONS = ("model", "optim", "data", "trainer", "adversarial", "robustness", "tracking")
# Keys the code reads with a default, so conf/ need not set them: `+model.dropout=0.2` is meant.
OPTIONAL_KEYS = frozenset(
    {
        "model.dropout",
        "model.channels_last",
        "optim.momentum",
        "optim.weight_decay",
        "optim.label_smoothing",
        "optim.scheduler",
        "optim.on_divergence",
        "data.epoch_size",
        "robustness.after_training",
        "tracking.log_model",
        "tracking.register",
        "tracking.register_sweep_jobs",
        "tracking.lock_timeout_s",
    }
)


def _parsed(overrides: Sequence[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("-")])


def keys_of(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Every dotted key of a composed config (sections and leaves)."""
    found = []
    for key, value in cfg.items_ex(resolve=False):
        name = f"{prefix}{key!s}"
        found.append(name)
        if isinstance(value, DictConfig):
            found.extend(keys_of(value, f"{name}."))
    return found


def groups() -> list[str]:
    return sorted(str(p.relative_to(CONF_DIR)) for p in CONF_DIR.rglob("*") if p.is_dir())


def closest(name: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def top_level_names() -> set[str]:
    """What an override may start with: a config group, a key of conf/config.yaml or of a preset
    that writes at the top level (`# @package _global_`), or hydra."""
    from omegaconf import OmegaConf

    names = {"hydra", *(p.name for p in CONF_DIR.iterdir() if p.is_dir())}
    names.update(str(k) for k in OmegaConf.load(CONF_DIR / "config.yaml"))
    return names


def check_top_level_keys(overrides: Sequence[str]) -> None:
    """Refuse `modle=cnn` before Hydra does: Hydra's own message suggests `+modle=cnn`, a key the
    pipeline would ignore. Only reads conf/config.yaml unless a name is unknown there."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    try:
        parsed = [o for o in _parsed(overrides) if not (o.is_add() or o.is_delete() or o.is_sweep_override())]
    except HydraException:
        return
    names = top_level_names()
    unknown = [o for o in parsed if o.key_or_group.split(".")[0].split("/")[0] not in names]
    if not unknown:
        return
    for preset in CONF_DIR.rglob("*.yaml"):  # rare path: a preset may add a top-level key
        if preset.read_text().lstrip().startswith("# @package _global_"):
            names.update(str(k) for k in OmegaConf.load(preset) if k != "defaults")
    if any(o.key_or_group.split(".")[0].split("/")[0] not in names for o in unknown):
        raise ConfigError(unknown_key_hint(overrides) or f"`{unknown[0].input_line}`: there is no such key.")


def unknown_key_hint(overrides: Sequence[str]) -> str | None:
    """After Hydra refused the overrides: which key or group is unknown, and the closest valid one.

    Composes conf/ with the overrides that name known groups and keys, so the candidates are those
    of the sections the user chose (`model=cnn` has `channels`, not `hidden`)."""
    from hydra.errors import HydraException

    try:
        parsed = [o for o in _parsed(overrides) if not o.is_sweep_override()]
    except HydraException:
        return None
    known_groups = groups()
    chosen = [o.input_line for o in parsed if o.key_or_group in known_groups and not o.is_add()]
    try:
        cfg = compose(chosen)
    except HydraException:
        cfg = compose()
    keys = keys_of(cfg)
    for o in parsed:
        key = o.key_or_group
        if key in known_groups and isinstance(o.value(), str):
            choices = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
            if o.value() not in choices:
                suggestion = closest(o.value(), choices)
                return f"`{o.input_line}`: {key} has no {o.value()!r}" + (
                    f"; did you mean {key}={suggestion}?" if suggestion else f"; choose one of {', '.join(choices)}."
                )
            continue
        if o.is_add() and key in keys:
            return f"`{o.input_line}`: {key} is already set; drop the +: `{o.input_line[1:]}`"
        if key.startswith("hydra") or key in known_groups or key in keys or o.is_add() or o.is_delete():
            continue
        if "." not in key:
            top = sorted(n for n in {*known_groups, *(k.split(".")[0] for k in keys)} if not n.startswith("hydra"))
            suggestion = closest(key, top)
            if not suggestion:
                names = ", ".join(top)
                return f"`{o.input_line}`: there is no {key!r}; the top-level names are {names} (--help lists each)."
        else:
            section = key.rsplit(".", 1)[0]
            suggestion = closest(key, [k for k in keys if k.rsplit(".", 1)[0] == section]) or closest(key, keys)
        return f"`{o.input_line}`: there is no {key!r}" + (f"; did you mean {suggestion!r}?" if suggestion else ".")
    return None


def check_added_keys(overrides: Sequence[str], cfg: DictConfig) -> None:
    """Refuse `+section.key=...` for a key the code never reads, in the project's own sections.

    `trainer` takes any argument of Lightning's Trainer (checked by the training command before its
    run opens: stages/train.py trainer_settings)."""
    from hydra.errors import HydraException

    try:
        parsed = _parsed(overrides)
    except HydraException:
        return
    added = {o.key_or_group for o in parsed if o.is_add() and not o.is_force_add()}
    if not added:
        return
    keys = [k for k in keys_of(cfg) if k not in added]
    for key in sorted(added):
        section = key.split(".", 1)[0]
        if section not in PROJECT_SECTIONS or section == "trainer" or key in OPTIONAL_KEYS:
            continue
        siblings = [k for k in keys if k.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]]
        suggestion = closest(key, [*siblings, *(k for k in OPTIONAL_KEYS if k.startswith(section + "."))])
        raise ConfigError(
            f"`+{key}`: {section} has no key {key.split('.', 1)[1]!r}, and the pipeline would ignore it"
            + (f"; did you mean {suggestion!r}?" if suggestion else f"; its keys: {', '.join(siblings)}.")
        )
