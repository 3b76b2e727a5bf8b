"""The champion alias: the registered version with the best validation accuracy, whatever the order of arrival;
the test split never chooses."""

from __future__ import annotations

import pytest
from conftest import run_module
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.tracking.registry import after_evaluation, pin_champion, update_champion


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("mnist", artifact_location=(tmp_path / "mlartifacts").as_uri())
    client.create_registered_model("mnist-mlp")

    def add_version(acc: float | None, test_acc: float | None = None) -> str:
        """A registered version whose run logged val/best_acc=acc (and test/acc, if given)."""
        run = client.create_run(exp)
        if acc is not None:
            client.log_metric(run.info.run_id, "val/best_acc", acc)
        if test_acc is not None:
            client.log_metric(run.info.run_id, "test/acc", test_acc)
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version("mnist-mlp", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        return mv.version

    return uri, client, add_version


def _vv(found):
    return (found.version, found.value)


def _champion(client) -> str:
    return str(client.get_model_version_by_alias("mnist-mlp", "champion").version)


def test_champion_is_the_best_by_validation_accuracy_not_the_newest(store):
    uri, client, add = store
    add(0.91)
    assert _vv(update_champion(uri, "mnist-mlp")) == (1, 0.91) and _champion(client) == "1"
    add(0.97)
    assert _vv(update_champion(uri, "mnist-mlp")) == (2, 0.97) and _champion(client) == "2"
    add(0.93)  # newer but worse: the alias stays
    assert _vv(update_champion(uri, "mnist-mlp")) == (2, 0.97) and _champion(client) == "2"
    add(0.97)  # a tie does not dethrone the champion
    assert _vv(update_champion(uri, "mnist-mlp")) == (2, 0.97) and _champion(client) == "2"


def test_champion_follows_validation_and_never_test_accuracy(store):
    uri, client, add = store
    add(0.95, test_acc=0.90)
    add(0.93, test_acc=0.99)  # better on the test split, worse on validation: not chosen
    assert _vv(update_champion(uri, "mnist-mlp")) == (1, 0.95) and _champion(client) == "1"
    add(0.96, test_acc=0.80)  # better on validation, much worse on test: chosen
    assert _vv(update_champion(uri, "mnist-mlp")) == (3, 0.96) and _champion(client) == "3"
    add(None, test_acc=1.0)  # a test score alone never competes
    assert _vv(update_champion(uri, "mnist-mlp")) == (3, 0.96) and _champion(client) == "3"


def test_versions_without_a_score_or_with_a_deleted_run_do_not_compete(store):
    uri, client, add = store
    add(None)
    assert update_champion(uri, "mnist-mlp") is None  # nothing evaluated yet: no alias
    with pytest.raises(MlflowException):
        _champion(client)
    add(0.90)
    best = add(0.99)
    assert _vv(update_champion(uri, "mnist-mlp")) == (3, 0.99)
    client.delete_run(client.get_model_version("mnist-mlp", best).run_id)
    assert _vv(update_champion(uri, "mnist-mlp")) == (2, 0.90) and _champion(client) == "2"
    assert update_champion(uri, "mnist-not-registered") is None


@pytest.mark.slow
def test_registry_command_lists_versions_scores_and_aliases(store, tmp_path):
    uri, _client, add = store
    add(0.9)
    add(0.95)
    out = run_module("pipeline.stages.registry", "mnist-mlp", "--update", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mnist-mlp@champion: none -> version 2 (val/best_acc=0.9500): the best val/best_acc of 2" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if "version   2" in ln)
    assert "val/best_acc=0.9500" in line and "@champion" in line
    out = run_module("pipeline.stages.registry", "mnist-nope", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 2 and "no registered model 'mnist-nope'" in out.stderr


def test_every_move_of_the_champion_is_one_line_naming_both_versions_and_why(store, capsys):
    uri, _client, add = store
    add(0.91)
    after_evaluation(uri, "mnist-mlp")
    assert "mnist-mlp@champion: none -> version 1 (val/best_acc=0.9100): the best" in capsys.readouterr().out
    add(0.97)
    after_evaluation(uri, "mnist-mlp")
    assert "mnist-mlp@champion: version 1 -> version 2 (val/best_acc=0.9700)" in capsys.readouterr().out
    add(0.5)
    after_evaluation(uri, "mnist-mlp")
    assert "mnist-mlp@champion stays version 2 (val/best_acc=0.9700)" in capsys.readouterr().out


def test_a_champion_set_by_hand_stays_until_validation_is_asked_again(store):
    uri, client, add = store
    add(0.97)
    add(0.91)
    assert _vv(update_champion(uri, "mnist-mlp")) == (1, 0.97)
    pinned = pin_champion(uri, "mnist-mlp", 2)
    assert (pinned.version, pinned.previous) == (2, 1) and "set by hand" in pinned.reason and _champion(client) == "2"
    add(0.99)  # a better version arrives: the pinned champion stays
    stays = update_champion(uri, "mnist-mlp")
    assert stays.version == 2 and "pinned by hand" in stays.reason and _champion(client) == "2"
    chosen = update_champion(uri, "mnist-mlp", unpin=True)  # `pipeline-registry mnist-mlp --update`
    assert (chosen.version, chosen.previous) == (3, 2) and _champion(client) == "3"
    with pytest.raises(ValueError, match="has no version 9"):
        pin_champion(uri, "mnist-mlp", 9)


@pytest.mark.slow
def test_registry_command_sets_and_shows_a_champion(store, tmp_path):
    uri, _client, add = store
    add(0.97)
    add(0.91)
    out = run_module("pipeline.stages.registry", "mnist-mlp", "--champion", "2", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "mnist-mlp@champion: none -> version 2" in out.stdout and "pinned by hand: champion.pinned=2" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if "version   2" in ln)
    assert "@champion" in line
    out = run_module("pipeline.stages.registry", "--champion", "2", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 2 and "--champion needs one model name" in out.stderr


@pytest.mark.parametrize(
    "register, hydra_run, in_sweep, preset, expected",
    [
        ("auto", False, False, None, (True, True)),  # dvc repro, dvc exp run
        ("auto", True, False, "claim_mlp", (True, True)),  # a preset
        ("auto", True, False, None, (True, False)),  # an ad-hoc pipeline-train: logged, not registered
        (True, True, False, None, (True, True)),  # asked for
        (False, False, False, None, (True, False)),
        ("auto", True, True, "claim_mlp", (False, False)),  # sweep jobs: only with register_sweep_jobs
    ],
)
def test_only_the_pipeline_and_the_user_register_models(register, hydra_run, in_sweep, preset, expected):
    from pipeline.config.model_policy import decide_model_policy
    from pipeline.config.settings import compose

    cfg = compose([f"tracking.register={str(register).lower()}"])
    assert decide_model_policy(cfg, hydra_run=hydra_run, in_sweep=in_sweep, preset=preset) == expected
    cfg.tracking.register_sweep_jobs = True
    assert decide_model_policy(cfg, hydra_run=True, in_sweep=True, preset=None) == (True, register is not False)
    cfg.tracking.log_model = False
    assert decide_model_policy(cfg, hydra_run=hydra_run, in_sweep=in_sweep, preset=preset) == (False, False)


@pytest.mark.slow
def test_an_ad_hoc_run_logs_its_model_and_leaves_the_registry_alone(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "data.train_subset=1000",
        "trainer.max_epochs=1",
        f"run_dir={tmp_path / 'run'}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "not registered: an ad-hoc run (tracking.register=true registers it)" in out.stdout
    assert "champion" not in out.stdout
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_registered_models() == []
    experiment = client.get_experiment_by_name("mnist").experiment_id
    assert len(client.search_logged_models(experiment_ids=[experiment])) == 1  # the model is in its run
