"""Random command-line overrides (unknown keys, wrong types, out-of-range values, odd strings)
thrown at configuration: each composes and validates, or ends in a clear error, never a traceback.

In-process at the compose + validate level (what `hydra.main` does before a stage runs), plus
real command lines for each kind of error.
"""

from __future__ import annotations

import pytest
from conftest import run_module
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from pipeline.config.settings import CONF_DIR, ConfigError, check_group_overrides, compose, validate


def _leaf_keys() -> list[str]:
    def walk(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield f"{prefix}{key}"
                yield from walk(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    return sorted(walk(OmegaConf.to_container(compose())))


KEYS = _leaf_keys()
GROUPS = ["model", "optim", "trainer", "data", "tracking", "robustness", "adversarial", "experiment"]

odd_strings = st.sampled_from(
    [
        "",
        "''",
        "abc",
        "null",
        "none",
        "nan",
        "inf",
        "-inf",
        "1e999",
        "-0",
        "0x10",
        "[]",
        "[1,2",
        "{}",
        "{a:1}",
        "${nope}",
        "${data.batch_size}",
        "${oc.env:NO_SUCH_VAR}",
        "'${oc.env:HOME}'",
        "ü",
        "a b",
        "'a=b'",
        "\\\\",
        "~",
        "*",
        "mlp",
        "cnn",
        "relu",
        "fgsm",
        "[fgsm,zzz]",
        "[0.1,2]",
        "[-1]",
        "[[1]]",
        "true",
        "false",
    ]
)
values = st.one_of(
    odd_strings,
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.integers(-5, 300), max_size=4).map(lambda v: "[" + ",".join(map(str, v)) + "]"),
    st.text(alphabet="abcXYZ019_-.,:[]{}'\"$= ", max_size=12),
)
keys = st.one_of(
    st.sampled_from(KEYS), st.sampled_from(GROUPS), st.text(alphabet="abcdefgh._", min_size=1, max_size=10)
)
override = st.one_of(
    st.tuples(st.sampled_from(["", "+", "++", "~"]), keys, values).map(lambda t: f"{t[0]}{t[1]}={t[2]}"),
    keys,  # a key without a value
)


def compose_and_validate(overrides: list[str]) -> None:
    """What `python -m pipeline.<stage> OVERRIDES` does before the stage itself runs."""
    check_group_overrides(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    validate(cfg)


@settings(max_examples=300, deadline=None)
@given(st.lists(override, min_size=1, max_size=3))
@pytest.mark.slow
def test_random_overrides_validate_or_give_a_clear_error(overrides):
    try:
        compose_and_validate(overrides)
    except ConfigError as err:
        assert str(err) and "Traceback" not in str(err)
    except HydraException as err:  # bad syntax, unknown key or group: Hydra prints the message alone
        assert str(err)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hidden=5", "model.hidden must be a list of positive widths"),
        ("model.dropout=abc", "model.dropout must be in [0, 1)"),
        ("optim.label_smoothing=1.0", "optim.label_smoothing must be in [0, 1)"),
        ("robustness.attacks=fgsm", "robustness.attacks must be a list"),
        ("robustness.eps=0.3", "robustness.eps must be a list"),
        ("optim.lr=${nope}", "optim.lr"),
    ],
)
def test_wrong_shapes_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        compose_and_validate([override])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.hidden=5", "error: model.hidden must be a list of positive widths"),
        ("optim.lr=${nope}", "error: optim.lr"),
        ("no_such_key=1", "there is no 'no_such_key'; the top-level names are "),
        ("model.hidden=[1,2", "no viable alternative at input '[1,2'"),
    ],
)
def test_command_line_gives_the_message_without_a_traceback(override, message, tmp_path):
    out = run_module("pipeline.stages.train", override, f"run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert message in out.stderr
    assert not (tmp_path / "run").exists()  # stopped before anything was written
