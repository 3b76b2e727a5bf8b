"""Reproducible mode: the same config and seed give the same bytes on every CPU, and without it they do not.

Another CPU is simulated from outside, through the variables with which torch, MKL, oneDNN and
glibc choose their code for the CPU they find: ATen's vector width (ATEN_CPU_CAPABILITY), MKL's code
path (MKL_CBWR), oneDNN's instruction set (ONEDNN_MAX_CPU_ISA), glibc's math functions
(GLIBC_TUNABLES, read when the process starts) and the core count (OMP_NUM_THREADS). Each run is
the real training command (train, then evaluate, in one process); the evaluate and robustness
commands also run on their own under other simulated CPUs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, run_module

HAS_AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else False
# What each simulated machine's libraries would pick; the first runs this CPU's fastest kernels.
CPUS = {
    "avx512, 2 cores": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO", "OMP_NUM_THREADS": "2"},
    "avx2, 1 core": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OMP_NUM_THREADS": "1",
    },
    "x86-64 without AVX2 or FMA, 2 cores": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        # glibc's exp and log (which ATen's baseline loops call) have FMA versions chosen at start-up
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-FMA4,-AVX512F",
        "OMP_NUM_THREADS": "2",
    },
}
if not HAS_AVX512:
    # ATen refuses a capability the CPU lacks: the avx512 machine becomes an avx2 one, last, so that
    # the first two still differ in their kernels (avx2 against the x86-64 baseline), not only in cores.
    CPUS["avx2, 2 cores"] = CPUS.pop("avx512, 2 cores") | {"ATEN_CPU_CAPABILITY": "avx2"}
FASTEST, OTHER, BASELINE = CPUS
TINY = ["data.train_subset=300", "trainer.max_epochs=1", "data.batch_size=100", "tracking.log_model=false"]
_runs: dict[tuple, Path] = {}


def weights_sha256(run_dir: Path) -> str:
    """The bytes of the best checkpoint's weights, name by name (the file also holds paths and times)."""
    import torch

    state = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trained(tmp: Path, mnist_root: Path, model: str, cpu: str, mode: bool) -> Path:
    """The run folder of the tiny training of `model` on the simulated `cpu` (run once per test session)."""
    key = (model, cpu, mode)
    if key not in _runs:
        run_dir = tmp / f"{model}-{list(CPUS).index(cpu)}-{'on' if mode else 'off'}"
        out = run_module(
            "pipeline.stages.train",
            *TINY,
            f"model={model}",
            f"reproducible={str(mode).lower()}",
            f"run_dir={run_dir}",
            f"tracking.uri=sqlite:///{tmp}/mlflow.db",
            f"data.root={mnist_root}",
            cwd=tmp,
            env=CPUS[cpu],
        )
        assert out.returncode == 0, out.stderr[-3000:]
        _runs[key] = run_dir
    return _runs[key]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reproducible")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_mode_gives_the_same_weights_and_metrics_on_every_simulated_cpu(tmp, mnist_root, model):
    cpus = list(CPUS) if model == "mlp" else [FASTEST, OTHER]  # the CNN adds oneDNN's convolutions
    runs = [trained(tmp, mnist_root, model, cpu, mode=True) for cpu in cpus]
    assert len({weights_sha256(r) for r in runs}) == 1, "weights differ across simulated CPUs"
    assert len({sha256(r / "metrics.json") for r in runs}) == 1, "metrics.json differs across simulated CPUs"
    assert json.loads((runs[0] / "metrics.json").read_text())["test"]["acc"] > 0.2  # it learned something


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_without_the_mode_the_simulated_cpus_disagree(tmp, mnist_root, model):
    """What the mode removes, shown: the same seed gives other weights and numbers on another CPU."""
    runs = [trained(tmp, mnist_root, model, cpu, mode=False) for cpu in (FASTEST, OTHER)]
    assert weights_sha256(runs[0]) != weights_sha256(runs[1])
    assert sha256(runs[0] / "metrics.json") != sha256(runs[1] / "metrics.json")


@pytest.mark.slow
def test_evaluate_and_robustness_commands_give_the_same_bytes_on_another_cpu(tmp, mnist_root):
    """The DVC stages run each command in its own process: each must enter the mode itself."""
    trained_here = trained(tmp, mnist_root, "mlp", FASTEST, mode=True)
    metrics = sha256(trained_here / "metrics.json")
    results = []
    for cpu in (OTHER, BASELINE):
        common = [f"run_dir={trained_here}", f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"data.root={mnist_root}"]
        out = run_module("pipeline.stages.evaluate", *common, cwd=tmp, env=CPUS[cpu])
        assert out.returncode == 0, out.stderr[-3000:]
        assert sha256(trained_here / "metrics.json") == metrics
        quick = ["robustness=quick", "robustness.corruptions=[rotate,fog]", "robustness.ood.n_images=200"]
        out = run_module("pipeline.stages.robustness", *common, *quick, cwd=tmp, env=CPUS[cpu])
        assert out.returncode == 0, out.stderr[-3000:]
        details = trained_here / "details" / "robustness.json"  # every figure, not only the headline
        results.append(((trained_here / "robustness.json").read_bytes(), details.read_bytes()))
    assert results[0] == results[1]
    assert json.loads(results[0][1])["images"] == 500


_PROBE = """
import sys
from omegaconf import OmegaConf
from pipeline.stages.reproducible import enter
on = enter(OmegaConf.create({"reproducible": sys.argv[1] == "true"}))
import torch
print(on, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), torch.backends.mkldnn.enabled)
"""


def _probe(mode: str, env: dict) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        cwd=PROJECT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


@pytest.mark.slow
def test_the_mode_takes_effect_over_what_the_machine_sets():
    """Set before torch loads, the baseline capability wins over the CPU's (here forced from outside)."""
    assert _probe("true", CPUS[FASTEST]) == ["True", "DEFAULT", "1", "False"]
    off = _probe("false", CPUS[FASTEST])
    cpu = CPUS[FASTEST]
    assert off[:3] == ["False", cpu["ATEN_CPU_CAPABILITY"].upper(), cpu["OMP_NUM_THREADS"]] and off[3] == "True"


def test_the_mode_refuses_to_start_after_torch_has_loaded(monkeypatch):
    """Too late for ATen and MKL: a clear error, not a run that silently is not reproducible."""
    import torch  # noqa: F401  (loaded, as in a process that imported it before the command)
    from omegaconf import OmegaConf

    from pipeline.stages.reproducible import ReproducibleModeError, enter

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    with pytest.raises(ReproducibleModeError, match="before torch is imported"):
        enter(OmegaConf.create({"reproducible": True}))


def test_a_setting_that_is_no_boolean_is_refused(tmp_path):
    """Refused with the other settings, before any work: exit status 2, nothing written."""
    run_dir = tmp_path / "run"
    out = run_module("pipeline.stages.train", "reproducible=yes", f"run_dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 2
    assert "error: reproducible='yes' is not true or false; set reproducible=true" in out.stderr
    assert not run_dir.exists() and not (tmp_path / "outputs").exists()
