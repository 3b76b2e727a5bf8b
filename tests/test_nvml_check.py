"""Training drops Lightning's NVML-based CUDA check where NVML cannot load, and only there.

Without an NVIDIA driver the check costs a failed dlopen on every optimiser step and answers what
torch's default check answers; with a driver it must stay (it keeps CUDA uninitialised before forks).
"""

from __future__ import annotations

import ctypes

import pytest
import torch

from pipeline.config.settings import compose, validate
from pipeline.stages import train

VAR = train.NVML_CHECK


def refuse(name):
    raise OSError(f"{name}: cannot open shared object file")


def test_without_nvml_the_check_is_dropped_and_the_answer_is_unchanged(monkeypatch):
    monkeypatch.setenv(VAR, "1")
    with_check = torch.cuda.is_available()
    monkeypatch.setattr(train.ctypes, "CDLL", refuse)
    assert train.drop_unusable_nvml_check() is True
    assert VAR not in train.os.environ
    assert torch.cuda.is_available() == with_check


def test_with_nvml_the_check_stays(monkeypatch):
    monkeypatch.setenv(VAR, "1")
    monkeypatch.setattr(train.ctypes, "CDLL", lambda name: object())
    assert train.drop_unusable_nvml_check() is False
    assert train.os.environ[VAR] == "1"


@pytest.mark.parametrize("value", [None, "0"])
def test_a_check_lightning_did_not_set_is_left_alone(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(VAR, raising=False)
    else:
        monkeypatch.setenv(VAR, value)
    monkeypatch.setattr(train.ctypes, "CDLL", refuse)
    assert train.drop_unusable_nvml_check() is False
    assert train.os.environ.get(VAR) == value


def test_the_training_command_applies_it_and_the_library_does_not(monkeypatch, tmp_path):
    import lightning  # noqa: F401  (sets the variable, as in every training process)

    from pipeline.stages import startup

    monkeypatch.setattr(startup, "_started", True)  # this test process's collector is left as it is
    monkeypatch.setenv(VAR, "1")
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        nvml_loads = True
    except OSError:
        nvml_loads = False
    # reproducible=false: the mode sets this test process's threads and oneDNN, and torch is loaded already
    cfg = compose([f"run_dir={tmp_path}", "trainer.max_epochs=1", "reproducible=false"])
    validate(cfg)
    train.build_trainer(cfg, tmp_path)  # library code: leaves the process as it is
    assert train.os.environ[VAR] == "1"
    train.as_command(lambda cfg: train.build_trainer(cfg, tmp_path))(cfg)
    assert (VAR in train.os.environ) == nvml_loads
