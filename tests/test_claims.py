"""Claim presets: every one composes, runs as a tiny sweep (2 jobs) with an MLflow parent run,
leaves its results for the report, and the report stage renders them."""

import json

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.config.settings import CONF_DIR, compose

PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if p.stem.startswith(("claim_", "optuna")))
# Each preset's sweep cut to 2 jobs and a few steps; the preset's own settings stay.
TINY_SWEEP = {
    "claim_mlp": ["seed=1,2", "data.batch_size=16"],  # 63 steps: 6 points of the loss curve (claim 11)
    "claim_cnn": ["seed=1,2", "data.train_subset=512", "data.batch_size=64"],
    "claim_linear": ["model.hidden=[],[32,16]"],
    "claim_activations": ["model.activation=relu,sigmoid", "trainer.max_epochs=2"],
    "claim_scaling": ["model.hidden=[16],[64,64]"],
    "claim_samples_mlp": ["data.train_subset=100,1000", "data.epoch_size=2000"],
    "claim_samples_cnn": ["data.train_subset=100,300", "data.epoch_size=512", "data.batch_size=64"],
    "optuna_mlp": ["hydra.sweeper.n_trials=2"],
    "claim_mechanics": ["seed=1,2"],
    "claim_baselines": ["baseline=tree,knn"],
    "claim_techniques": ["model.init=normal,he", "model.batch_norm=false", "model.dropout=0.0", "optim.lr=0.5"],
    "claim_composition": [
        "composition.split=0,1",
        "composition.per_pair_train=20",
        "composition.per_pair_test=5",
        "composition.epochs=1",
    ],
    # The models the tiny MLP and CNN sweeps (which run before it, by name) left behind.
    "claim_perturbation": [
        "perturbation.model=mlp,cnn",
        "perturbation.models.mlp={root}/multirun/claim_mlp/0/checkpoints/best.ckpt",
        "perturbation.models.cnn={root}/multirun/claim_cnn/0/checkpoints/best.ckpt",
        "perturbation.images=40",
        "perturbation.radii=[0.1,0.3]",
        "perturbation.max_iter=10",
        "perturbation.pgd_steps=5",
        "perturbation.examples=2",
    ],
    "claim_depth": [
        "depth.sawtooth.ks=[2,3,4]",
        "depth.sawtooth.steps=100",
        "depth.regions.epochs=1",
        "depth.regions.lines=2",
        "depth.regions.points=2000",
    ],
}
# The stage each preset sweeps (the rest train networks).
STAGE = {
    "claim_baselines": "pipeline.stages.baselines",
    "claim_depth": "pipeline.stages.depth",
    "claim_composition": "pipeline.stages.composition",
    "claim_perturbation": "pipeline.stages.perturbation",
}
NO_BRITTLENESS = (
    "optuna_mlp",
    "claim_mechanics",
    "claim_baselines",
    "claim_depth",
    "claim_techniques",
    "claim_composition",
    "claim_perturbation",
)
# Their jobs measure fits and regions, digit pairs or trained models, not one classifier they train.
MEASURES_NO_TEST_SET = ("claim_depth", "claim_composition", "claim_perturbation")
TINY_JOB = [
    "data.train_subset=1000",
    "trainer.max_epochs=1",
    "tracking.log_model=false",
    "robustness.n_images=100",
    "robustness.ood.n_images=100",
    "robustness.corruptions=[rotate,fog]",
]


def test_every_preset_has_a_tiny_sweep():
    assert set(PRESETS) == set(TINY_SWEEP)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_to_a_valid_config(preset):
    from pipeline.config.settings import validate

    cfg = compose([f"experiment={preset}"])
    validate(cfg)
    assert cfg.robustness.after_training is (preset not in NO_BRITTLENESS)
    assert cfg.evaluate.mechanics is (preset == "claim_mechanics")
    if preset in ("claim_cnn", "claim_samples_cnn"):
        assert cfg.model.arch == "cnn" and cfg.data.augment and cfg.optim.scheduler == "onecycle"
    elif preset == "claim_linear":
        assert cfg.model.activation == "identity"
    elif preset == "claim_baselines":
        assert cfg.baseline.name == "logistic"
    elif preset == "claim_techniques":  # tests/test_techniques.py checks the rest
        assert list(cfg.model.hidden) == [256] * 6 and cfg.evaluate.init_gradients
    else:
        assert cfg.model.name == "mlp" and list(cfg.model.hidden) == [128, 64]
    if preset.startswith("claim_samples"):
        assert cfg.data.epoch_size == 55000  # every subset size gets the same number of steps


@pytest.fixture(scope="module")
def swept(tmp_path_factory, mnist_root):
    """Every preset run as a tiny sweep in one project folder, as a user would run them."""
    root = tmp_path_factory.mktemp("claims")
    uri = f"sqlite:///{root}/mlflow.db"
    outputs = {}
    assert PRESETS.index("claim_perturbation") > max(PRESETS.index("claim_mlp"), PRESETS.index("claim_cnn"))
    for preset in PRESETS:
        job = [o for o in TINY_JOB if o.split("=")[0] not in {t.split("=")[0] for t in TINY_SWEEP[preset]}]
        outputs[preset] = run_module(
            STAGE.get(preset, "pipeline.stages.train"),
            f"experiment={preset}",
            *(o.format(root=root) for o in TINY_SWEEP[preset]),
            *job,
            f"tracking.uri={uri}",
            f"data.root={mnist_root}",
            f"hydra.sweep.dir={root}/multirun/{preset}",
            cwd=root,
        )
    return root, uri, outputs


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_sweep_is_one_parent_run_with_a_child_per_job(swept, preset):
    root, uri, outputs = swept
    out = outputs[preset]
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("mnist").experiment_id], filter_string=f"tags.preset = '{preset}'"
    )
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 2 and len(runs) == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert sorted(c.data.tags["sweep.job"] for c in children) == ["0", "1"]
    assert parents[0].info.status == "FINISHED" and parents[0].data.metrics["sweep/jobs"] == 2
    stage = STAGE.get(preset, "pipeline.stages.train")  # the note reproduces the sweep with its own stage
    assert f"python -m {stage} -m " in parents[0].data.tags["mlflow.note.content"]
    for child in children:
        assert child.info.status == "FINISHED"
        if preset not in MEASURES_NO_TEST_SET:
            assert 0.05 < child.data.metrics["test/acc"] <= 1
        if preset not in NO_BRITTLENESS:  # the others measure brittleness after training
            assert 0 <= child.data.metrics["robust/pgd_acc_eps0.1"] <= child.data.metrics["robust/clean_acc"]
    results = json.loads((root / "reports" / "results" / f"{preset}.json").read_text())
    assert results["parent_run_id"] == parents[0].info.run_id and len(results["jobs"]) == 2
    if preset not in MEASURES_NO_TEST_SET:
        assert all(job["history"]["val/acc"] for job in results["jobs"])


@pytest.mark.slow
def test_sweep_values_reach_the_jobs(swept):
    root, _uri, _ = swept
    linear = json.loads((root / "reports/results/claim_linear.json").read_text())
    assert [j["params"]["model.hidden"] for j in linear["jobs"]] == ["[]", "[32, 16]"]
    for job in linear["jobs"]:  # each stack was multiplied out and matched its single map
        assert job["metrics"]["collapse/max_logit_diff"] < 1e-3
        assert job["metrics"]["collapse/prediction_agreement"] == 1.0
    samples = json.loads((root / "reports/results/claim_samples_mlp.json").read_text())
    assert [j["params"]["data.train_subset"] for j in samples["jobs"]] == ["100", "1000"]
    optuna = json.loads((root / "reports/results/optuna_mlp.json").read_text())
    lrs = {j["params"]["optim.lr"] for j in optuna["jobs"]}
    assert len(lrs) == 2 and all(1e-4 <= float(lr) <= 1e-2 for lr in lrs)  # sampled from the search space
    techniques = json.loads((root / "reports/results/claim_techniques.json").read_text())
    assert [j["params"]["model.init"] for j in techniques["jobs"]] == ["normal", "he"]
    for job in techniques["jobs"]:  # the untrained net's gradient per layer: 6 hidden layers and the output
        assert sorted(k for k in job["metrics"] if k.startswith("init_grad/layer")) == [
            f"init_grad/layer{i}" for i in range(1, 8)
        ]
    normal, he = techniques["jobs"]
    assert normal["metrics"]["init_grad/layer1"] < he["metrics"]["init_grad/layer1"] / 100
    mechanics = json.loads((root / "reports/results/claim_mechanics.json").read_text())
    for job in mechanics["jobs"]:  # measured on each trained MLP, kept with the sweep's results
        assert job["metrics"]["mechanics/numpy_prediction_agreement"] == 1.0
        assert job["metrics"]["mechanics/gradcheck_all_fast"] == 1.0
        assert 0 < job["metrics"]["mechanics/backward_over_forward"] < 20
    perturbation = json.loads((root / "reports/results/claim_perturbation.json").read_text())
    assert [j["params"]["perturbation.model"] for j in perturbation["jobs"]] == ["mlp", "cnn"]
    for job in perturbation["jobs"]:  # each trained model measured, its examples kept for the report's grid
        m = job["metrics"]
        assert m["perturbation/l2/median"] > 0
        assert 0 < m["perturbation/linf/median"] <= m["perturbation/linf_pgd/median"]
        assert 0 <= m["perturbation/linf/within_eps"] <= m["perturbation/linf/within_visible_eps"] <= 1
        assert len(job["artifact"]["examples"]) == 2 and len(job["artifact"]["percentiles"]["l2"]) == 101
    cnn = json.loads((root / "reports/results/claim_cnn.json").read_text())
    assert set(cnn["figures"]) == {"filters_layer1", "filters_deep"}
    assert (root / "reports/results" / cnn["figures"]["filters_layer1"]["path"]).is_file()


@pytest.mark.slow
def test_report_stage_renders_every_claim_from_the_sweeps(swept, tmp_path):
    root, uri, _ = swept
    out = run_module("pipeline.stages.report", f"tracking.uri={uri}", f"run_dir={tmp_path / 'none'}", cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    md = (root / "reports" / "report.md").read_text()
    page = (root / "reports" / "report.html").read_text()
    for number in [*"123456789", "10", "11", "12", "13", "14", "15"]:
        assert f"## {number}. " in md and f"<h2>{number}. " in page
    assert "not measured yet" not in md  # every claim found its sweep
    assert "python -m pipeline.stages.train experiment=claim_cnn" in md
    assert "python -m pipeline.stages.baselines experiment=claim_baselines" in md
    assert "Simard et al., ICDAR 2003" in md  # the published column
    figures = (
        "activations",
        "scaling",
        "samples",
        "linear",
        "mechanics",
        "baselines",
        "loss_curve",
        "depth",
        "techniques",
        "composition",
        "perturbation",
        "perturbation_examples",
    )
    for figure in figures:
        assert (root / "reports" / "figures" / f"{figure}.png").stat().st_size > 5000
        assert f"figures/{figure}.png" in md and f'src="figures/{figure}.png"' in page
    assert 'src="results/figures/claim_mlp_filters_layer1.png"' in page
    client = MlflowClient(uri)
    report_runs = client.search_runs([client.get_experiment_by_name("mnist-reports").experiment_id])
    assert len(report_runs) == 1
    logged = {a.path for a in client.list_artifacts(report_runs[0].info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= logged


@pytest.mark.slow
def test_ddp_inside_a_sweep_runs_each_job_once(tmp_path, mnist_root):
    """Lightning restarts DDP ranks from sys.argv; inside a multirun that must not relaunch the sweep."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        "-m",
        "trainer=ddp_cpu",
        "seed=1,2",
        "data.train_subset=400",
        "trainer.max_epochs=1",
        "tracking.log_model=false",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        f"hydra.sweep.dir={tmp_path}/multirun",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("[sweep] MLflow parent run") == 1
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert len(runs) == 3 and sum(r.data.tags.get("sweep") == "parent" for r in runs) == 1
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(p.name for p in (tmp_path / "multirun").iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "outputs").exists()  # no rank wrote a run directory of its own
