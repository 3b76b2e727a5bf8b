"""A typo on the command line is refused with the closest valid name, exit status 2, and no run folder."""

from __future__ import annotations

import pytest
from conftest import run_module

from pipeline.config.overrides import check_added_keys, unknown_key_hint
from pipeline.config.settings import ConfigError, compose


@pytest.mark.parametrize(
    "override, message",
    [
        ("modle=cnn", "did you mean 'model'?"),
        ("model.hiden=3", "did you mean 'model.hidden'?"),
        ("+model.hiden=3", "model has no key 'hiden', and the pipeline would ignore it; did you mean 'model.hidden'?"),
        ("experiment=claim_mpl", "did you mean experiment=claim_mlp?"),
        ("+model.dropout=0.2", "model.dropout is already set; drop the +: `model.dropout=0.2`"),
        ("optim.lr=-1", "optim.lr must be a positive float, got -1"),
        ("data.batch_size=abc", "data.batch_size must be a positive int, got 'abc'"),
        ("trainer.max_epochs=0", "trainer.max_epochs must be a positive int, got 0"),
        (
            "+trainer.max_epoch=3",
            "trainer.max_epoch is no argument of Lightning's Trainer; did you mean trainer.max_epochs?",
        ),
    ],
)
def test_a_bad_setting_exits_2_with_the_fix_and_leaves_no_run_folder(override, message, tmp_path):
    out = run_module("pipeline.stages.train", override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.rstrip().splitlines()[-1].startswith("error: ") and message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("override", ["modle=cnn", "optim.lr=-1"])
def test_a_refused_run_leaves_nothing_in_the_working_folder(override, tmp_path):
    """As a user types it, with Hydra's own run folder (outputs/runs/<time>_mlp/): nothing is left,
    and Hydra's hint to add the unknown key with + is not printed beside the right one."""
    out = run_module("pipeline.stages.train", override, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "use +" not in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_dvc_front_door_exits_2_on_a_bad_params_file(tmp_path):
    out = run_module("pipeline.stages.evaluate", "--params", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_suggestions_follow_the_chosen_group():
    # The CNN's section has `channels`; the MLP's has `hidden`.
    assert "'model.channels'" in unknown_key_hint(["model=cnn", "model.chanels=[8,16]"])
    assert "'model.hidden'" in unknown_key_hint(["model.hiden=[8]"])
    assert unknown_key_hint(["model=cnn", "seed=1,2,3"]) is None  # nothing wrong: no hint


def test_keys_the_code_reads_with_a_default_may_be_added():
    cfg = compose(["data.epoch_size=null"])
    check_added_keys(["+trainer.gradient_clip_val=1.0"], cfg)  # any Trainer argument
    check_added_keys(["++model.hiden=3"], cfg)  # `++` says: set it whatever it is
    with pytest.raises(ConfigError, match=r"did you mean 'optim\.label_smoothing'"):
        check_added_keys(["+optim.label_smothing=0.1"], compose(["+optim.label_smothing=0.1"]))
