"""Claim 10: the classical baselines stage and its verdict rules, on both sides."""

import json

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.claims.baselines import PRESET, baselines_claim, mlp_against_svm
from pipeline.claims.catalogue import all_claims
from pipeline.classical.estimators import ESTIMATORS, UnknownEstimator, build
from pipeline.config.settings import CONF_DIR, compose


@pytest.mark.parametrize("name", ["logistic", "tree", "forest", "knn", "nystroem", "svm"])
def test_every_baseline_config_builds_its_estimator(name):
    cfg = compose(["experiment=claim_baselines", f"baseline={name}"])
    estimator = build(cfg.baseline.estimator, dict(cfg.baseline.settings), cfg.seed)
    assert hasattr(estimator, "fit") and hasattr(estimator, "predict")


def test_the_preset_sweeps_all_five():
    cfg = compose(["experiment=claim_baselines"])
    assert cfg.baseline.name == "logistic"
    assert {p.stem for p in (CONF_DIR / "baseline").glob("*.yaml")} == {
        "logistic",
        "tree",
        "forest",
        "knn",
        "nystroem",
        "svm",
    }
    assert len(ESTIMATORS) == 6


def test_unknown_estimator_and_setting_are_named():
    with pytest.raises(UnknownEstimator, match="'boosting' is not one of logistic_regression"):
        build("boosting", {}, 0)
    with pytest.raises(UnknownEstimator, match="max_dept"):
        build("decision_tree", {"max_dept": 3}, 0)


def test_without_a_baseline_it_says_which_preset_to_run(tmp_path, mnist_root):
    out = run_module("pipeline.stages.baselines", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path)
    assert out.returncode == 2 and "experiment=claim_baselines" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and not (tmp_path / "outputs").exists()


def test_a_bad_setting_stops_before_a_run_or_folder_is_made(tmp_path, mnist_root):
    out = run_module(
        "pipeline.stages.baselines",
        "experiment=claim_baselines",
        "baseline=tree",
        "+baseline.settings.max_dept=3",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        f"data.root={mnist_root}",
        "hydra.mode=RUN",
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "max_dept" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_tiny_sweep_records_each_estimator_as_a_child_run(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = (
        "experiment=claim_baselines",
        "baseline=tree,knn",
        "data.train_subset=2000",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
    )
    out = run_module("pipeline.stages.baselines", *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("sweep") == "parent")
    assert "python -m pipeline.stages.baselines -m" in parent.data.tags["mlflow.note.content"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["model.name"] for c in children) == ["knn", "tree"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert 0.5 < child.data.metrics["test/acc"] < 1 and child.data.metrics["time/fit_s"] >= 0
        assert child.data.metrics["time/predict_us_per_image"] > 0
        assert child.data.params[
            "sklearn.n_neighbors" if child.data.params["model.name"] == "knn" else "sklearn.criterion"
        ]
    knn = next(c for c in children if c.data.params["model.name"] == "knn")
    assert (
        knn.data.params["sklearn.n_neighbors"] == "3"
        and knn.data.params["baseline.estimator"] == "k_nearest_neighbours"
    )
    results = json.loads((tmp_path / "reports/results/claim_baselines.json").read_text())
    assert [j["params"]["model.name"] for j in results["jobs"]] == ["tree", "knn"]
    # A failed sweep run again keeps its finished jobs: the parent is marked FAILED as after a crash.
    client.set_terminated(parent.info.run_id, "FAILED")
    again = run_module("pipeline.stages.baselines", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("; kept") == 2 and "fitting" not in again.stdout
    rerun = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert len(rerun) == len(runs) and client.get_run(parent.info.run_id).info.status == "FINISHED"
    # A job stopped in its run (as by Ctrl-C) is fitted again in a new run; the parent counts it once.
    client.set_terminated(knn.info.run_id, "KILLED")
    client.set_terminated(parent.info.run_id, "KILLED")
    third = run_module("pipeline.stages.baselines", *args, cwd=tmp_path)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("; kept") == 1 and "knn: fitting" in third.stdout
    ended = client.get_run(parent.info.run_id)
    assert ended.info.status == "FINISHED" and ended.data.metrics["sweep/jobs"] == 2
    assert ended.data.metrics["sweep/failed"] == 0
    assert client.get_run(knn.info.run_id).data.tags["sweep.retried"] == "true"
    assert len(client.search_runs([client.get_experiment_by_name("mnist").experiment_id])) == len(runs) + 1


def _job(name, **metrics):
    params = {"model.name": name, "seed": "1", "model.parameters": "109386"}
    return {"status": "FINISHED", "params": params, "metrics": metrics, "history": {}}


def _network(error, seconds):
    return {"test/acc": 1 - error, "test/loss": 0.1, "val/best_acc": 1 - error, "time/train_s": seconds}


def _results(cnn_errors, best_classical=0.014, mlp_errors=(0.024, 0.025, 0.026)):
    classical = {
        "logistic": 0.076,
        "tree": 0.12,
        "forest": 0.031,
        "knn": 0.029,
        "nystroem": 0.023,
        "svm": best_classical,
    }
    return {
        PRESET: {
            "jobs": [
                _job(n, **{"test/error": e, "test/acc": 1 - e, "time/fit_s": 5.0, "time/predict_us_per_image": 3.0})
                for n, e in classical.items()
            ]
        },
        "claim_cnn": {"jobs": [_job("cnn", **_network(e, 100.0)) for e in cnn_errors]},
        "claim_mlp": {"jobs": [_job("mlp", **_network(e, 10.0)) for e in mlp_errors]},
    }


def test_deep_beats_the_alternatives_when_the_cnn_is_clear_of_the_best_by_more_than_its_spread():
    claim = baselines_claim(_results([0.005, 0.0055, 0.0045]))
    assert claim.verdict == "holds"
    assert "kernel SVM" in claim.measured and "0.90 points" in claim.measured
    assert claim.command == "python -m pipeline.stages.baselines experiment=claim_baselines"


def test_it_does_not_hold_when_the_margin_is_within_the_cnns_spread():
    claim = baselines_claim(_results([0.010, 0.016, 0.013], best_classical=0.014))
    assert claim.verdict == "does not hold"


def test_mlp_against_svm_is_a_tie_within_two_standard_deviations():
    assert mlp_against_svm([0.024, 0.025, 0.026], 0.0265).startswith("a tie")
    assert mlp_against_svm([0.024, 0.025, 0.026], 0.014) == "the SVM is better by 1.10 points"
    assert mlp_against_svm([0.014, 0.015, 0.016], 0.025) == "the MLP is better by 1.00 points"


def test_without_the_full_svm_the_mlp_is_set_against_the_approximation():
    results = _results([0.005, 0.0055, 0.0045])
    results[PRESET]["jobs"] = [j for j in results[PRESET]["jobs"] if j["params"]["model.name"] != "svm"]
    claim = baselines_claim(results)
    assert (
        "the MLP against the kernel SVM, approximated" in claim.measured and "SVM is better by 0.20" in claim.measured
    )


def test_the_claim_waits_for_its_sweep_and_the_cnns():
    assert baselines_claim({}).verdict == "not run"
    partial = _results([0.005, 0.005, 0.005])
    del partial["claim_cnn"]
    assert baselines_claim(partial).verdict == "not run"
    assert any(c.number == "10" and c.published for c in all_claims(_results([0.005, 0.006, 0.004])))
