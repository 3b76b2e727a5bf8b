"""The benchmark suite (benchmarks/) in its quick mode: it runs, and its results have the promised shape.

Functional checks only: no assertion here depends on how fast anything was.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from conftest import PROJECT

sys.path.insert(0, str(PROJECT))  # benchmarks/ is a top-level package of the repository, not installed

ROW_KEYS = {"benchmark", "case", "ours", "baseline", "unit", "ratio", "target", "met", "note", "checks"}


@pytest.fixture(autouse=True)
def bench_env(mnist_root, monkeypatch):
    """The prepared MNIST of the test session, and one torch thread: a shared machine stays usable."""
    monkeypatch.setenv("BENCH_DATA_ROOT", str(mnist_root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def positive(value) -> bool:
    return finite(value) and value > 0


def check_rows(rows: list[dict], benchmark: str | tuple[str, ...]) -> list[dict]:
    """Every row is complete and JSON-serialisable; measured rows have positive, finite figures."""
    assert rows
    json.dumps(rows)
    for r in rows:
        assert set(r) == ROW_KEYS, r
        assert r["benchmark"] in ((benchmark,) if isinstance(benchmark, str) else benchmark)
        if r["checks"].get("skipped"):
            assert r["note"].startswith("skipped: ") and r["ours"] is None and r["met"] is None
            continue
        assert not r["checks"].get("failed"), r["note"]
        # A difference of timings is finite but may fall below zero within noise; a timing may not.
        assert (finite if r["checks"].get("difference") else positive)(r["ours"]), r
        if r["baseline"] is not None:
            assert positive(r["baseline"]) and positive(r["ratio"])
            assert r["ratio"] == pytest.approx(r["ours"] / r["baseline"])
        if r["target"]:
            assert r["met"] in (True, False)
    return [r for r in rows if not r["checks"].get("skipped")]


@pytest.mark.slow
def test_data_path(mnist_root):
    from benchmarks import data_path

    rows = check_rows(data_path.run(quick=True, repeats=1), "data")
    assert len(rows) == 5 and all(r["unit"] == "img/s" for r in rows)
    assert all(r["checks"]["same_pixels"] for r in rows[:4])  # torchvision decodes the images we train on
    assert {r["case"] for r in rows} >= {
        "no augmentation vs DataLoader, workers=0",
        "random_affine vs DataLoader+RandomAffine, workers=2",
    }


def test_torchvision_folder_is_what_torchvision_reads(mnist_root, tmp_path):
    from torchvision.datasets import MNIST

    from benchmarks.data_path import torchvision_folder
    from pipeline.data.mnist import load_split

    ds = MNIST(root=str(torchvision_folder(tmp_path, mnist_root)), train=False, download=False)
    images, labels = load_split(mnist_root, "test")
    assert len(ds) == 10000 and torch.equal(ds.data, images) and torch.equal(ds.targets, labels)


@pytest.mark.slow
def test_loop_trains_the_same_weights_as_the_plain_loop():
    from benchmarks import loop

    rows = check_rows(loop.run(quick=True, repeats=1), "loop")
    assert [r["case"].split(",")[0] for r in rows] == ["MLP batch 128", "MLP batch 128", "CNN batch 128"]
    floor = rows[1]  # Lightning's floor: the plain loop's work in a minimal LightningModule
    assert "floor" in floor["case"] and floor["target"] == "" and floor["baseline"] == rows[0]["baseline"]
    for r in rows:  # ours and the floor both train exactly what the plain loop trains
        c = r["checks"]
        assert c["same_accuracy"] and c["val_acc_ours"] == pytest.approx(c["val_acc_plain"], abs=1e-6)
        assert c["max_weight_diff"] < 1e-5
    # Epoch-level logging: at most a read every few steps (the divergence check), not one per step.
    assert rows[0]["checks"]["host_reads_per_step"] < 0.5


def test_time_to_accuracy():
    from benchmarks import time_to_accuracy

    rows = time_to_accuracy.run(quick=True, repeats=1)
    measured = check_rows(rows, "time-to-accuracy")
    assert len(measured) == 1 and measured[0]["checks"]["reached"] and measured[0]["unit"] == "s"
    history = measured[0]["checks"]["history"]
    assert history[-1][2] >= 0.9 and all(h[2] < 0.9 for h in history[:-1])  # stopped at the first epoch there
    assert any("--full" in r["note"] for r in rows)  # the CNN run is opt-in


@pytest.mark.slow
def test_startup_rejects_bad_config_without_torch():
    from benchmarks import startup

    rows = check_rows(startup.run(quick=True), "startup")
    assert len(rows) == 2
    assert all(r["checks"]["torch_imported"] is False for r in rows)


@pytest.mark.slow
def test_attack_cost():
    from benchmarks import attack_cost

    rows = check_rows(attack_cost.run(quick=True, repeats=1), "attack")
    assert {r["case"].split()[0] for r in rows} == {"MLP", "CNN"}
    for r in rows:
        if "robust_acc_ours" in r["checks"]:
            assert r["checks"]["similar_accuracy"]
            assert 0 <= r["checks"]["robust_acc_ours"] <= 1


def test_plain_pgd_stays_in_the_eps_ball():
    from benchmarks.attack_cost import plain_pgd
    from pipeline.nn.models import MLP

    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    adv = plain_pgd(MLP().eval(), x, y, eps=0.1, steps=3, step_size=0.05)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


@pytest.mark.slow
def test_choices_are_accuracy_neutral_where_claimed():
    from benchmarks import choices

    rows = check_rows(choices.run(quick=True, repeats=1), "choices")
    by_case = {r["case"]: r["checks"] for r in rows}
    assert by_case["CNN step, channels_last vs NCHW"]["same_logits"]
    assert by_case["MLP step, adam default vs fused=True"]["same_weights"]
    assert by_case["CNN step, adamw default vs fused=True"]["same_weights"]
    for arch in ("MLP", "CNN"):
        assert 0.9 <= by_case[f"{arch} step, fp32 vs bf16 autocast"]["prediction_agreement"] <= 1


@pytest.mark.slow
def test_compile_row_reports_a_result_or_the_failure():
    from benchmarks import choices

    probe = torch.rand(16, 1, 28, 28)
    r = choices._compile_row("mlp", steps=3, warmup=1, repeats=1, probe=probe)
    if r["checks"]["compile_failed"]:
        assert r["note"].startswith("torch.compile failed")
    else:
        check_rows([r], "choices")
        assert r["checks"]["same_logits"] and r["checks"]["compile_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--import-stack", "--lightning-loop")], ids=["bare", "floor"])
def test_bare_script_learns(mnist_root, flags):
    """The baselines of the whole-command rows are real trainings: they must learn, or the ratios mean nothing."""
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT / "benchmarks" / "bare_train.py"),
            "--data",
            str(mnist_root),
            "--epochs",
            "2",
            "--train-size",
            "5000",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["test_acc"]) == 2 and result["test_acc"][-1] > 0.85 and result["loop_s"] > 0


@pytest.mark.slow
def test_whole_command_rows():
    from benchmarks import command

    rows = check_rows(command.run(quick=True, repeats=1), "command")
    cases = [r["case"].split(",")[0].split(":")[0] for r in rows]
    assert cases == ["train", "train", "train", "fixed cost of a run", "sweep"]
    whole, imports, floor = rows[:3]
    assert whole["target"] == "ratio <= 1.5" and whole["checks"]["bare_loop_s"][0] < whole["baseline"]
    # The stack's imports: the same bare script, timed against the same bare runs; no target.
    assert "imports" in imports["case"] and imports["baseline"] == whole["baseline"] and imports["target"] == ""
    assert imports["checks"]["bare_loop_s"][0] < imports["ours"]
    # The stack's floor (its imports and Lightning's loop) is the baseline of the command itself.
    assert "floor" in floor["case"] and floor["ours"] == whole["ours"] and floor["target"] == "ratio <= 1.25"
    assert floor["checks"]["floor_loop_s"][0] < floor["baseline"]
    # The sweep's overhead per job is what a job costs beyond the training its own log reports.
    # Every sample is a timing; the per-job figures are differences of them.
    sweep = rows[4]["checks"]
    assert sweep["jobs_more"] == 2
    samples = sweep["samples_one"] + sweep["samples_more"] + sweep["work_s_one"] + sweep["work_s_more"]
    assert len(samples) == 4 and all(positive(s) for s in samples)
    assert rows[4]["ours"] == pytest.approx(sweep["per_job_s"] - sweep["per_job_work_s"])
    assert sweep["per_job_s"] == pytest.approx(sweep["samples_more"][0] - sweep["samples_one"][0])


@pytest.mark.slow
def test_reproducible_mode_cost_rows():
    from benchmarks import reproducible_cost

    rows = check_rows(reproducible_cost.run(quick=True, repeats=1), "repro")
    assert [(r["case"].split(",")[1].strip(), r["case"].split(" vs ")[1]) for r in rows] == [
        ("MLP 1 epoch", "false"),
        ("MLP 1 epoch", "false at 1 thread"),
        ("CNN 1 epoch", "false"),
        ("CNN 1 epoch", "false at 1 thread"),
    ]
    # Both rows of a model compare the same runs in the mode against two baselines.
    assert rows[0]["checks"]["samples"] == rows[1]["checks"]["samples"]
    assert rows[0]["checks"]["samples_baseline"] != rows[1]["checks"]["samples_baseline"]
    for r in rows:
        checks = r["checks"]
        assert checks["samples"] == [r["ours"]] and checks["samples_baseline"] == [r["baseline"]]
        # The training each command reports is part of its whole time, on and off alike.
        assert 0 < checks["train_s"][0] < r["ours"] and 0 < checks["train_s_baseline"][0] < r["baseline"]


def test_gpu_is_skipped_without_cuda():
    from benchmarks import gpu

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the GPU benchmark would run for real")
    rows = gpu.run(quick=True)
    check_rows(rows, "gpu")
    assert all(r["note"] == "skipped: no CUDA device" for r in rows)


def test_runner_writes_json_and_markdown(tmp_path, capsys):
    from benchmarks import run

    out = tmp_path / "results.json"
    result = run.main(["--quick", "--only", "gpu", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == result["results"] and saved["settings"]["quick"] is True
    assert {"cpu", "cores", "torch", "load_average_1m"} <= set(saved["machine"])
    table = out.with_suffix(".md").read_text()
    assert "| benchmark | ours | baseline | ratio | target | met? |" in table
    printed = capsys.readouterr().out
    assert printed.startswith("Machine: ") and "| gpu: " in printed


def test_runner_rejects_unknown_benchmarks():
    from benchmarks import run

    with pytest.raises(SystemExit):
        run.parse(["--only", "data,nope"])


@pytest.mark.slow
def test_suite_rows_time_a_real_pytest_process():
    from benchmarks import suite

    seconds, summary = suite._pytest("tests/test_metrics.py")
    assert summary.startswith("1 passed") and summary.endswith(" workers") and seconds > 0
    _, summary = suite._pytest("tests/test_metrics.py", "-n", "0")  # the baseline: no workers
    assert summary.startswith("1 passed") and summary.endswith(" in one process")
    (quick,) = suite.run(quick=True)
    assert quick["checks"].get("skipped")
