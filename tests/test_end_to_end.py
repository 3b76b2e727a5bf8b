"""Tiny real runs: Hydra app, DVC pipeline, DDP on two CPU processes; every record checked in MLflow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_module
from mlflow.tracking import MlflowClient

from pipeline.common.metric_names import mlflow_name

TINY = ["data.train_subset=2000", "trainer.max_epochs=2", "data.batch_size=100"]
TEST = ("acc", "loss", "ece")  # metrics.json's keys under "test" (pipeline/common/headline.py)


def _only_run(uri):
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, mnist_root):
    """One tiny Hydra run (train, then evaluate), shared by the tests that read its records."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_dir = tmp_path / "run"
    out = run_module(
        "pipeline.stages.train",
        *TINY,
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir, uri, out


@pytest.mark.slow
def test_hydra_run_trains_evaluates_and_tracks_everything(tiny_run):
    run_dir, uri, out = tiny_run
    assert "[train] epoch 2/2" in out.stdout and "[evaluate] test/acc=" in out.stdout
    said = out.stdout + out.stderr  # Lightning's device report stays; its advert and torch's notice do not
    assert "GPU available" in said and "litlogger" not in said and "LeafSpec" not in said

    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "details" / "metrics.json").read_text())
    assert 0.80 < metrics["test"]["acc"] <= 1.0
    assert metrics["model"]["parameters"] == 109_386
    # The DVC metric holds the headline only: one column each in `dvc exp show`.
    assert json.loads((run_dir / "metrics.json").read_text()) == {"test": {k: metrics["test"][k] for k in TEST}}
    assert len((run_dir / "plots" / "history.csv").read_text().splitlines()) == 3
    assert len((run_dir / "plots" / "confusion.csv").read_text().splitlines()) == 10001

    client, run = _only_run(uri)
    assert run.info.run_id == json.loads((run_dir / "run.json").read_text())["run_id"]
    assert run.info.status == "FINISHED"
    assert run.data.params["model.hidden"] == "[128, 64]" and run.data.params["data.train_subset"] == "2000"
    assert run.data.params["model.parameters"] == "109386"
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test"]["acc"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, mlflow_name("val/acc"))] == [1, 2]
    assert run.data.tags["model"] == "mlp" and run.data.tags["git.commit"]
    assert "python -m pipeline.stages.train" in run.data.tags["mlflow.note.content"]
    assert run.info.run_name.startswith("mlp-128x64-relu-adam0.001-s42-")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "checkpoints", "evaluation"} <= artifacts
    evaluation = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion.png", "evaluation/reliability.png", "evaluation/metrics.json"} <= evaluation
    # An ad-hoc run logs its model in its run and leaves the registry alone (tracking.register=auto).
    assert "not registered: an ad-hoc run" in out.stdout and client.search_registered_models() == []
    (model,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert model.source_run_id == run.info.run_id


def test_run_carries_the_dataset_and_mlflows_standard_tags(tiny_run):
    from pipeline.data.mnist import IDX_SHA256, dataset_digest

    _, uri, _ = tiny_run
    client, run = _only_run(uri)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on runs
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"mnist", "mnist-test"}  # trained on; evaluated on (tests/test_model_metrics.py)
    entry = inputs["mnist"]
    assert (entry.dataset.name, entry.dataset.digest) == ("mnist", dataset_digest())
    assert [(t.key, t.value) for t in entry.tags] == [("mlflow.data.context", "training")]
    assert [(t.key, t.value) for t in inputs["mnist-test"].tags] == [("mlflow.data.context", "evaluation")]
    profile = json.loads(entry.dataset.profile)
    assert profile["num_rows"] == {"train": 2000, "validation": 5000, "test": 10000}
    assert profile["official_sha256"] == IDX_SHA256
    assert json.loads(entry.dataset.source)["url"].startswith("https://")
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == tags["git.commit"] != "unknown"
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"] == "python -m pipeline.stages.train"
    assert tags["mlflow.user"]


@pytest.mark.slow
def test_robustness_stage_measures_and_logs_into_the_same_run(tiny_run, mnist_root):
    run_dir, uri, _ = tiny_run
    out = run_module(
        "pipeline.stages.robustness",
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "robustness=quick",
        "robustness.corruptions=[rotate,fog]",
        cwd=run_dir.parent,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((run_dir / "details" / "robustness.json").read_text())
    assert result["images"] == 500
    headline = {k: result["adversarial"][k] for k in ("pgd_eps0.1", "pgd_eps0.3")}
    assert json.loads((run_dir / "robustness.json").read_text()) == headline  # the DVC metric
    clean = result["clean"]["acc"]
    # Brittleness, measured: PGD at eps 0.1 costs the MLP most of its accuracy, eps 0.3 all of it.
    assert result["adversarial"]["pgd_eps0.1"] < clean - 0.3
    assert result["adversarial"]["pgd_eps0.3"] <= result["adversarial"]["fgsm_eps0.3"] <= 0.1
    assert set(result["mnist_c"]["acc"]) == {"rotate", "fog"} and result["mnist_c"]["worst"] in {"rotate", "fog"}
    assert 0.5 < result["ood_auroc"]["fashion_mnist"] <= 1.0
    rows = (run_dir / "plots/robustness/adversarial.csv").read_text().splitlines()
    assert rows[0] == "eps,fgsm,pgd" and len(rows) == 4
    assert (run_dir / "figures/robustness/adversarial_examples.png").stat().st_size > 10_000

    client, run = _only_run(uri)
    assert run.data.metrics["robust/pgd_acc_eps0.1"] == pytest.approx(result["adversarial"]["pgd_eps0.1"])
    assert run.data.metrics["ood/fashion_mnist_auroc"] == pytest.approx(result["ood_auroc"]["fashion_mnist"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "robust/pgd_acc_curve")] == [0, 10, 30]
    assert "robustness/adversarial_examples.png" in {
        a.path for a in client.list_artifacts(run.info.run_id, "robustness")
    }


def test_bad_robustness_settings_are_refused_before_work(tmp_path):
    out = run_module("pipeline.stages.robustness", "robustness.eps=[0.1,2.0]", f"run_dir={tmp_path}", cwd=tmp_path)
    assert out.returncode != 0 and "every eps must be in [0, 1]" in out.stderr
    out = run_module("pipeline.stages.robustness", "robustness.attacks=[cw]", f"run_dir={tmp_path}", cwd=tmp_path)
    assert "valid: fgsm, pgd" in out.stderr


@pytest.mark.slow
def test_failed_training_marks_the_run_failed(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = run_module(
        "pipeline.stages.train",
        *TINY,
        f"run_dir={tmp_path / 'run'}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "trainer.precision=not-a-precision",
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert _only_run(uri)[1].info.status == "FAILED"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_logs_once(tmp_path, mnist_root):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_dir = tmp_path / "run"
    out = run_module(
        "pipeline.stages.train",
        "trainer=ddp_cpu",
        "data.train_subset=1000",
        "trainer.max_epochs=1",
        f"run_dir={run_dir}",
        f"tracking.uri={uri}",
        f"data.root={mnist_root}",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "distributed_backend=gloo" in out.stderr + out.stdout
    assert out.stdout.count("[train] epoch 1/1") == 1  # rank 1 trains but does not report or log
    _client, run = _only_run(uri)
    assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


def _project_copy(tmp_path, idx_dir):
    """A fresh git repository holding the project's tracked files, without its DVC outputs and lock
    (each test's params.yaml reads the data from the local IDX folder `idx_dir`)."""
    from dvc_project import project_copy

    (tmp_path / "project").mkdir()
    return project_copy(tmp_path / "project", skip=("outputs/", "dvc.lock"))


def _dvc_env():
    """The environment's bin/ first on PATH, as an activated environment has it; never the user's store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


_DVC = [sys.executable, "-c", "from dvc.cli import main; raise SystemExit(main())"]


def _dvc(project, *args, timeout=900):
    """`dvc ARGS`, run as a user of the activated environment would."""
    return subprocess.run([*_DVC, *args], cwd=project, capture_output=True, text=True, timeout=timeout, env=_dvc_env())


@pytest.mark.slow
def test_dvc_repro_default_pipeline_reaches_97_percent_then_does_nothing(tmp_path, idx_dir):
    project = _project_copy(tmp_path, idx_dir)
    params = run_module(
        "pipeline.stages.config", "data.source=local", f"data.local_dir={idx_dir}", "robustness=quick", cwd=project
    )
    (project / "params.yaml").write_text(params.stdout)

    first = _dvc(project, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for stage in ("data", "train", "evaluate", "robustness"):
        assert f"Running stage '{stage}'" in first.stdout
    metrics = json.loads((project / "outputs/main/metrics.json").read_text())
    assert metrics["test"]["acc"] >= 0.97  # the seed MLP's promise, on the full data and default config

    again = _dvc(project, "repro")
    assert again.returncode == 0 and "Running stage" not in again.stdout
    shown = _dvc(project, "metrics", "show", "--json")
    assert '"acc"' in shown.stdout and '"pgd_eps0.1"' in shown.stdout
    plots = _dvc(project, "plots", "show", "-o", str(tmp_path / "plots"))
    assert plots.returncode == 0 and "failed" not in plots.stdout + plots.stderr
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "accuracy per epoch" in page and "accuracy under attack" in page and "confusion.csv" in page
    _, run = _only_run(f"sqlite:///{project}/mlflow.db")
    assert run.data.tags["dvc.stage"] == "train" and run.data.metrics["test/acc"] == metrics["test"]["acc"]


@pytest.mark.slow
def test_dvc_exp_run_switches_the_model_through_hydra(tmp_path, idx_dir):
    project = _project_copy(tmp_path, idx_dir)
    # Up to evaluate: what this test reads (the default pipeline's test runs every stage).
    out = _dvc(
        project,
        "exp",
        "run",
        "evaluate",
        "-S",
        "model=linear",
        "-S",
        "data.source=local",
        "-S",
        f"data.local_dir={idx_dir}",
        "-S",
        "data.train_subset=2000",
        "-S",
        "trainer.max_epochs=1",
        "-S",
        "tracking.log_model=false",
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Running stage 'robustness'" not in out.stdout
    metrics = json.loads((project / "outputs/main/details/metrics.json").read_text())
    assert metrics["model"]["name"] == "linear"
    _, run = _only_run(f"sqlite:///{project}/mlflow.db")
    assert run.data.params["model.activation"] == "identity"
    shown = _dvc(project, "exp", "show", "--json")
    assert shown.returncode == 0 and "linear" in shown.stdout


@pytest.mark.slow
def test_dvc_repro_after_a_killed_training_resumes_without_cleanup(tmp_path, idx_dir):
    import signal
    import time

    project = _project_copy(tmp_path, idx_dir)
    params = run_module(
        "pipeline.stages.config",
        "data.source=local",
        f"data.local_dir={idx_dir}",
        "robustness=quick",
        "data.train_subset=3000",
        "data.batch_size=50",
        "trainer.max_epochs=4",
        "tracking.log_model=false",
        cwd=project,
    )
    (project / "params.yaml").write_text(params.stdout)
    proc = subprocess.Popen(
        [*_DVC, "repro"],
        cwd=project,
        env=_dvc_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    history = project / "outputs/main/plots/history.csv"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the training under it, as a crash or OOM kill would
    proc.wait()
    assert not (project / "outputs/main/metrics.json").exists()

    again = _dvc(project, "repro")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming MLflow run" in again.stdout
    assert len(history.read_text().splitlines()) == 5
    _, run = _only_run(f"sqlite:///{project}/mlflow.db")
    assert run.info.status == "FINISHED" and "robust/pgd_acc_eps0.1" in run.data.metrics
    assert "Running stage" not in _dvc(project, "repro").stdout


@pytest.mark.slow
def test_dvc_queue_runs_experiments_into_the_projects_mlflow_store(tmp_path, idx_dir):
    """`dvc exp run --queue` + `dvc queue start`: runs happen in temporary copies of the repository,
    and their MLflow runs must still land in the project's own store."""
    import time

    project = _project_copy(tmp_path, idx_dir)
    common = [
        "-S",
        "data.source=local",
        "-S",
        f"data.local_dir={idx_dir}",
        "-S",
        "data.train_subset=1000",
        "-S",
        "trainer.max_epochs=1",
        "-S",
        "tracking.log_model=false",
    ]
    for width in (32, 64):  # up to evaluate: the stages whose records this test reads
        queued = _dvc(
            project,
            "exp",
            "run",
            "evaluate",
            "--queue",
            "-n",
            f"width-{width}",
            "-S",
            f"model.hidden=[{width}]",
            *common,
        )
        assert queued.returncode == 0, queued.stdout[-2000:] + queued.stderr[-2000:]
    started = _dvc(project, "queue", "start", "-j", "1")
    assert started.returncode == 0, started.stderr[-2000:]
    deadline = time.time() + 600
    while time.time() < deadline:
        status = _dvc(project, "queue", "status").stdout
        if status.count("Success") == 2 or "Failed" in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status + _dvc(project, "queue", "logs", "width-32").stdout[-3000:]
    shown = _dvc(project, "exp", "show", "--json")
    assert "width-32" in shown.stdout and "width-64" in shown.stdout
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("mnist").experiment_id])
    assert sorted(r.data.tags.get("dvc.experiment") for r in runs) == ["width-32", "width-64"]
    assert sorted(r.data.params["model.hidden"] for r in runs) == ["[32]", "[64]"]
    assert all(r.info.status == "FINISHED" and "test/acc" in r.data.metrics for r in runs)
    assert not list((project / ".dvc").rglob("mlflow.db"))  # nothing stranded in the temporary copies


@pytest.mark.slow
def test_a_second_dvc_repro_in_the_same_checkout_stops_at_once_and_the_first_completes(tmp_path, idx_dir):
    import time

    project = _project_copy(tmp_path, idx_dir)
    params = run_module(
        "pipeline.stages.config",
        "data.source=local",
        f"data.local_dir={idx_dir}",
        "data.train_subset=3000",
        "data.batch_size=50",
        "trainer.max_epochs=3",
        "tracking.log_model=false",
        cwd=project,
    )
    (project / "params.yaml").write_text(params.stdout)
    first = subprocess.Popen(
        [*_DVC, "repro", "train"],
        cwd=project,
        env=_dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    history = project / "outputs/main/plots/history.csv"
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None and not history.is_file():
        time.sleep(0.05)  # the first is training
    second = _dvc(project, "repro", "train")
    assert first.poll() is None  # it stopped while the first still ran
    assert second.returncode != 0
    said = second.stdout + second.stderr
    # DVC's own message: what is busy, the process that holds it, and the lock file if that process is gone
    assert "is busy, it is being blocked by" in said and f"(PID {first.pid})" in said, said[-2000:]
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out[-3000:]
    assert len(history.read_text().splitlines()) == 4  # all three epochs, once
    _, run = _only_run(f"sqlite:///{project}/mlflow.db")
    assert run.info.status == "FINISHED"
