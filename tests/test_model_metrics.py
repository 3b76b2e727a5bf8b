"""The names MLflow shows, and the metrics recorded against the logged model.

The MLflow UI's run page lists metric sections by the name before the last '/', in code-point order
(then the unprefixed "Model metrics"): the per-epoch curves must come first. The evaluation and
robustness numbers are also the logged model's metrics (MLflow 3's LoggedModel), each with the
dataset it was measured on, and those datasets are the run's evaluation inputs.
"""

from __future__ import annotations

import functools
import locale
import os

import pytest
from conftest import run_module

from pipeline.common import metric_names as names

# Every name the training, evaluation and robustness stages log, as the project calls them.
LOGGED = [
    *names.EPOCH_METRICS,
    names.TRAIN_LR,
    names.TRAIN_STEP_LOSS,
    names.VAL_PGD_ACC,
    names.VAL_BEST_ACC,
    names.EPOCH_SECONDS,
    names.TRAIN_SECONDS,
    names.TRAIN_CPU_SECONDS,
    names.TRAIN_GPU_SECONDS,
    names.JOB_CPU_SECONDS,
    names.TEST_ACC,
    names.TEST_ECE,
    names.test_precision(3),
    names.collapse("single_map_acc"),
    names.ROBUST_CLEAN_ACC,
    names.attack_acc("pgd", 0.1),
    names.attack_curve("pgd"),
    names.autoattack_acc(0.3),
    names.SHIFT_CLEAN_ECE,
    names.MNIST_C_MEAN_ACC,
    names.corruption_acc("fog"),
    names.ood_auroc("fashion_mnist"),
]


def _sections(metric_keys: list[str]) -> list[str]:
    """The run page's metric sections in the order the UI lists them (prefix before the last '/')."""
    return sorted({key.rpartition("/")[0] for key in metric_keys})


def test_the_per_epoch_curves_are_the_first_sections_mlflow_shows():
    shown = [names.mlflow_name(n) for n in LOGGED]
    sections = _sections(shown)
    assert sections[:2] == ["curves/train", "curves/val"], sections
    # The same under a locale-aware order (the UI's order once sections are added to a page).
    by_locale = sorted(sections, key=functools.cmp_to_key(locale.strcoll))
    assert by_locale[:2] == ["curves/train", "curves/val"]
    # curves/train holds the three per-epoch training curves alone (loss, acc, lr: one row of charts),
    # so curves/val stays on the first screen; the loss over steps has a section of its own.
    assert sorted(n for n in shown if n.startswith("curves/train/")) == [
        "curves/train/acc",
        "curves/train/loss",
        "curves/train/lr",
    ]
    assert names.mlflow_name(names.TRAIN_STEP_LOSS) == "steps/train_loss"
    # Robustness, shift and OOD stay, each its own section, after the curves.
    assert {"robust", "shift", "ood", "test", "test/collapse"} <= set(sections[2:])
    # Under the project's own names the curves came last: the reason for the mapping.
    assert _sections(LOGGED)[-2:] == ["train", "val"]


def test_mlflow_names_map_back_to_the_project_names():
    assert names.mlflow_name(names.TRAIN_LOSS) == "curves/train/loss"
    assert names.mlflow_name(names.VAL_ACC) == "curves/val/acc"
    assert names.mlflow_name(names.collapse("layers")) == "test/collapse/layers"
    # The champion's measure keeps its name: versions logged before and after compare.
    assert names.mlflow_name(names.VAL_BEST_ACC) == "val/best_acc"
    for name in LOGGED:
        assert names.project_name(names.mlflow_name(name)) == name
    assert len({names.mlflow_name(n) for n in LOGGED}) == len(LOGGED)


def test_run_writes_the_shown_names_and_reads_back_older_runs_too(tmp_path):
    """Run.log_metrics writes what MLflow shows; Run.metric_history reads by the project's name, also
    from a run logged under that name before the mapping (a store people already have)."""
    from mlflow.entities import Metric

    from pipeline.tracking.client import client
    from pipeline.tracking.runs import create_run

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    new, old = (create_run(uri, "mnist", name, {}) for name in ("new", "old"))
    for epoch, acc in ((1, 0.5), (2, 0.75)):
        new.log_metrics({names.VAL_ACC: acc, names.VAL_BEST_ACC: acc}, step=epoch)
        client(uri).log_batch(old.run_id, metrics=[Metric(names.VAL_ACC, acc, 0, epoch)])
    assert set(new.get().data.metrics) == {"curves/val/acc", "val/best_acc"}
    assert new.metric_history(names.VAL_ACC) == old.metric_history(names.VAL_ACC) == [0.5, 0.75]
    assert new.logged_model_id() is None  # no model logged: the numbers go to the run alone


def test_each_robustness_number_names_the_data_it_was_measured_on():
    from pipeline.data.mnist import test_split_record
    from pipeline.robustness.eval_datasets import dataset_key, fashion_record, mnist_c_record

    assert dataset_key(names.attack_acc("pgd", 0.1)) == "test"
    assert dataset_key(names.ROBUST_CLEAN_ACC) == dataset_key(names.SHIFT_CLEAN_ECE) == "test"
    assert dataset_key(names.corruption_acc("fog")) == dataset_key(names.MNIST_C_WORST_ACC) == "mnist_c"
    assert dataset_key(names.ood_auroc("fashion_mnist")) == "fashion"
    whole, subset = test_split_record(), test_split_record(500, 0)
    assert whole["name"] == "mnist-test" and subset["name"] == "mnist-test-500"
    assert whole["digest"] != subset["digest"] != test_split_record(500, 1)["digest"]
    assert len(whole["digest"]) <= 36  # MLflow's limit
    port = mnist_c_record(subset, ["rotate", "fog"], None)
    assert port["digest"] != mnist_c_record(whole, ["rotate", "fog"], None)["digest"]
    assert port["digest"] == mnist_c_record(subset, ["fog", "rotate"], None)["digest"]
    assert fashion_record(None)["name"] == "fashion-mnist-test"
    assert fashion_record(100)["digest"] != fashion_record(None)["digest"]


@pytest.mark.slow
def test_the_logged_model_carries_test_and_robust_accuracy_with_their_datasets(tmp_path, mnist_root):
    """A tiny run: train, evaluate, robustness. The logged model's metrics are the run's numbers, each
    with its dataset; the run lists the test subset, MNIST-C and Fashion-MNIST as evaluation inputs."""
    import json

    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.data.mnist import test_split_record

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "data.train_subset=1000",
        "trainer.max_epochs=2",
        f"run_dir={tmp_path}/run",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "tracking.register=true",
        "robustness=quick",
        "robustness.after_training=true",
        "robustness.n_images=200",
        "robustness.ood.n_images=200",
        "robustness.corruptions=[rotate,fog]",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    (found,) = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    run = client.get_run(found.info.run_id)  # search_runs leaves out the run's model inputs
    (output,) = run.outputs.model_outputs
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.get_logged_model(output.model_id)
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    by_key = {m.key: m for m in model.metrics or []}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    robust = json.loads((tmp_path / "run" / "details" / "robustness.json").read_text())  # every figure

    test = by_key[names.TEST_ACC]
    assert test.value == pytest.approx(metrics["test"]["acc"]) and test.value > 0.5  # chance: 0.1
    assert (test.dataset_name, test.dataset_digest) == ("mnist-test", test_split_record()["digest"])
    assert test.run_id == run.info.run_id
    pgd = by_key[names.attack_acc("pgd", 0.1)]
    assert pgd.value == pytest.approx(robust["adversarial"]["pgd_eps0.1"])
    assert pgd.dataset_name == "mnist-test-200"
    clean = by_key[names.ROBUST_CLEAN_ACC]
    assert clean.value == pytest.approx(robust["clean"]["acc"]) and clean.dataset_name == "mnist-test-200"
    assert by_key[names.MNIST_C_MEAN_ACC].value == pytest.approx(robust["mnist_c"]["mean_acc"])
    assert by_key[names.corruption_acc("fog")].dataset_name == "mnist-c"
    fashion = by_key[names.ood_auroc("fashion_mnist")]
    assert fashion.value == pytest.approx(robust["ood_auroc"]["fashion_mnist"])
    assert fashion.dataset_name == "fashion-mnist-test-200"
    # Training curves are the run's, not the model's: the Models view ranks by what was evaluated.
    assert not any(key.startswith("curves/") for key in by_key)

    # What training cost: CPU-seconds of the process, every thread (more than the wall-clock time when
    # torch ran on both cores, never more than that time by the cores); no GPU, so no GPU-seconds.
    train_s, cpu_s = run.data.metrics[names.TRAIN_SECONDS], run.data.metrics[names.TRAIN_CPU_SECONDS]
    assert 0.2 * train_s < cpu_s <= (os.cpu_count() or 1) * train_s * 1.05 + 0.5
    assert names.TRAIN_GPU_SECONDS not in run.data.metrics

    # The run: curves under the names MLflow shows, and every evaluation dataset tied to the model.
    assert names.mlflow_name(names.VAL_ACC) in run.data.metrics and names.VAL_ACC not in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "curves/val/acc")] == [1, 2]
    contexts = {
        d.dataset.name: {t.value for t in d.tags if t.key == "mlflow.data.context"} for d in run.inputs.dataset_inputs
    }
    assert contexts == {
        "mnist": {"training"},
        "mnist-test": {"evaluation"},
        "mnist-test-200": {"evaluation"},
        "mnist-c": {"evaluation"},
        "fashion-mnist-test-200": {"evaluation"},
    }
    assert {m.model_id for m in run.inputs.model_inputs} == {output.model_id}
    # Registered: the version points at the same logged model.
    (version,) = client.search_model_versions("name = 'mnist-mlp'")
    assert version.source == f"models:/{output.model_id}"
