"""DVC tracks only the headline figures as metrics, so `dvc metrics show` and README's `dvc exp show`
fit a 120-column terminal with every cell readable; the detail lives in outputs/main/details/."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml
from conftest import PROJECT
from dvc_project import dvc, project_copy

from pipeline.common import headline

RUN_DIR = PROJECT / "outputs" / "main"


def _read(name: str) -> dict:
    return json.loads((RUN_DIR / name).read_text())


def _readme_exp_show() -> list[str]:
    """README's `dvc exp show ...` command (Daily commands), as argv after `dvc`."""
    lines = [line for line in (PROJECT / "README.md").read_text().splitlines() if line.startswith("dvc exp show")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0], comments=True)[1:]


def _assert_fits(text: str, width: int = 120) -> None:
    lines = text.splitlines()
    assert lines, "nothing printed"
    assert max(len(line) for line in lines) <= width, text
    assert "…" not in text, text  # rich's sign of a column or cell cut to fit


def test_dvc_yaml_declares_only_the_two_headline_files_as_metrics():
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    metrics = sorted(next(iter(m)) for s in stages.values() for m in s.get("metrics", []))
    assert metrics == ["${run_dir}/metrics.json", "${run_dir}/robustness.json"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for s in stages.values() for o in s.get("outs", [])}
    assert {"${run_dir}/details/metrics.json", "${run_dir}/details/robustness.json"} <= outs
    report_deps = set(stages["report"]["deps"])
    assert {"${run_dir}/details/metrics.json", "${run_dir}/details/robustness.json"} <= report_deps


def test_committed_metrics_hold_the_headline_keys_with_the_details_numbers():
    metrics, details = _read(headline.EVALUATION_METRICS), _read(headline.EVALUATION_DETAILS)
    assert metrics == {"test": {key: details["test"][key] for key in ("acc", "loss", "ece")}}
    # the seed MLP's `dvc repro`, as README quotes it
    assert f"`dvc repro`: {metrics['test']['acc']:.2%}".replace("%", " %") in (PROJECT / "README.md").read_text()
    assert set(details["test"]["precision"]) == {str(d) for d in range(10)} and details["model"]["name"] == "mlp"

    robust, robust_details = _read(headline.ROBUSTNESS_METRICS), _read(headline.ROBUSTNESS_DETAILS)
    assert (
        set(robust) == {"pgd_eps0.1", "pgd_eps0.3"}
        and 0.05 < robust["pgd_eps0.1"] < 0.3
        and robust["pgd_eps0.3"] < 0.01
    )
    assert robust == {key: robust_details["adversarial"][key] for key in robust}
    assert len(robust_details["mnist_c"]["acc"]) == 15 and "ood_auroc" in robust_details


def _committed_figures() -> set[str]:
    """Test accuracy and PGD accuracy at eps 0.1 of the committed outputs, as DVC prints them."""
    acc = _read(headline.EVALUATION_METRICS)["test"]["acc"]
    pgd = _read(headline.ROBUSTNESS_METRICS)["pgd_eps0.1"]
    return {f"{acc:g}", f"{pgd:g}"}


def test_headline_keeps_the_pgd_radii_the_stage_reached():
    details = {"adversarial": {"fgsm_eps0.1": 0.3, "pgd_eps0.1": 0.2, "fgsm_eps0.3": 0.01, "pgd_eps0.3": 0.0}}
    assert headline.robustness_headline(details) == {"pgd_eps0.1": 0.2, "pgd_eps0.3": 0.0}
    # A profile whose eps grid stops below 0.3 (robustness=quick with eps=[0.1]) has one headline radius.
    assert headline.robustness_headline({"adversarial": {"pgd_eps0.1": 0.2}}) == {"pgd_eps0.1": 0.2}
    evaluation = {"test": {"acc": 0.9, "loss": 0.3, "ece": 0.02, "precision": {"0": 1.0}}, "model": {"name": "mlp"}}
    assert headline.evaluation_headline(evaluation) == {"test": {"acc": 0.9, "loss": 0.3, "ece": 0.02}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return project_copy(tmp_path_factory.mktemp("dvc-metrics") / "project")


def test_dvc_metrics_show_fits_120_columns(project):
    out = dvc(project, "metrics", "show")
    assert out.returncode == 0, out.stderr
    _assert_fits(out.stdout)
    header = out.stdout.splitlines()[0]
    assert re.split(r"\s+", header.strip()) == ["Path", "pgd_eps0.1", "pgd_eps0.3", "test.acc", "test.ece", "test.loss"]
    assert _committed_figures() <= set(re.split(r"\s+", out.stdout))


def test_readmes_exp_show_fits_120_columns_beside_a_queued_experiment(project):
    # A queued experiment is a real row (name, overrides composed through Hydra) without training.
    queued = dvc(project, "exp", "run", "--queue", "-S", "model=cnn", "-S", "optim.lr=0.01", "-n", "cnn-lr-0.01")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    out = dvc(project, *_readme_exp_show(), "--no-pager")
    assert out.returncode == 0, out.stderr
    _assert_fits(out.stdout)
    for column in ("Experiment", "test.acc", "test.loss", "test.ece", "pgd_eps0.1", "pgd_eps0.3", "model.name"):
        assert column in out.stdout
    assert _committed_figures() <= set(re.split(r"\s+", out.stdout))
    assert re.search(r"\[cnn-lr-0\.01\].*\bcnn\b.*0\.01", out.stdout), out.stdout


def test_the_old_per_class_metrics_do_not_fit(project):
    """The checks above can fail: the per-class metrics.json of before makes `dvc metrics show` too wide."""
    old = json.loads((RUN_DIR / headline.EVALUATION_DETAILS).read_text())
    (project / "outputs/main/metrics.json").write_text(json.dumps(old))
    try:
        out = dvc(project, "metrics", "show")
        assert out.returncode == 0, out.stderr
        assert "test.precision.0" in out.stdout
        with pytest.raises(AssertionError):
            _assert_fits(out.stdout)
    finally:
        (project / "outputs/main/metrics.json").write_text((RUN_DIR / headline.EVALUATION_METRICS).read_text())
