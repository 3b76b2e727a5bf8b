"""The champion alias: the registered version with the best validation accuracy, whatever the order of arrival;
the test split never chooses."""

from __future__ import annotations

import pytest
from conftest import run_module
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.tracking.registry import update_champion


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


def _champion(client) -> str:
    return str(client.get_model_version_by_alias("mnist-mlp", "champion").version)


def test_champion_is_the_best_by_validation_accuracy_not_the_newest(store):
    uri, client, add = store
    add(0.91)
    assert update_champion(uri, "mnist-mlp") == (1, 0.91) and _champion(client) == "1"
    add(0.97)
    assert update_champion(uri, "mnist-mlp") == (2, 0.97) and _champion(client) == "2"
    add(0.93)  # newer but worse: the alias stays
    assert update_champion(uri, "mnist-mlp") == (2, 0.97) and _champion(client) == "2"
    add(0.97)  # a tie does not dethrone the champion
    assert update_champion(uri, "mnist-mlp") == (2, 0.97) and _champion(client) == "2"


def test_champion_follows_validation_and_never_test_accuracy(store):
    uri, client, add = store
    add(0.95, test_acc=0.90)
    add(0.93, test_acc=0.99)  # better on the test split, worse on validation: not chosen
    assert update_champion(uri, "mnist-mlp") == (1, 0.95) and _champion(client) == "1"
    add(0.96, test_acc=0.80)  # better on validation, much worse on test: chosen
    assert update_champion(uri, "mnist-mlp") == (3, 0.96) and _champion(client) == "3"
    add(None, test_acc=1.0)  # a test score alone never competes
    assert update_champion(uri, "mnist-mlp") == (3, 0.96) and _champion(client) == "3"


def test_versions_without_a_score_or_with_a_deleted_run_do_not_compete(store):
    uri, client, add = store
    add(None)
    assert update_champion(uri, "mnist-mlp") is None  # nothing evaluated yet: no alias
    with pytest.raises(MlflowException):
        _champion(client)
    add(0.90)
    best = add(0.99)
    assert update_champion(uri, "mnist-mlp") == (3, 0.99)
    client.delete_run(client.get_model_version("mnist-mlp", best).run_id)
    assert update_champion(uri, "mnist-mlp") == (2, 0.90) and _champion(client) == "2"
    assert update_champion(uri, "mnist-not-registered") is None


@pytest.mark.slow
def test_registry_command_lists_versions_scores_and_aliases(store, tmp_path):
    uri, _client, add = store
    add(0.9)
    add(0.95)
    out = run_module("pipeline.stages.registry", "mnist-mlp", "--update", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "champion -> version 2 (val/best_acc=0.9500)" in out.stdout
    line = next(ln for ln in out.stdout.splitlines() if "version   2" in ln)
    assert "val/best_acc=0.9500" in line and "@champion" in line
    out = run_module("pipeline.stages.registry", "mnist-nope", "--tracking-uri", uri, cwd=tmp_path)
    assert out.returncode == 2 and "no registered model 'mnist-nope'" in out.stderr
