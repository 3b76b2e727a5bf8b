"""Which runs log their model and which register it: the champion moves only when the user asks
(tracking.register=true) or the pipeline decides (`dvc repro`, `dvc exp run`, the experiment presets)."""

from __future__ import annotations

from omegaconf import DictConfig


def model_policy(cfg: DictConfig) -> tuple[bool, bool]:
    """Whether this run logs its model, and whether it registers it (a version in the registry,
    which may become the champion).

    tracking.register=auto: the DVC stage (`dvc repro`, `dvc exp run`) and the experiment presets
    register; an ad-hoc Hydra run only logs its model, so the champion never moves behind the
    user's back. A sweep's jobs log and register only with tracking.register_sweep_jobs=true (a
    preset sweep would otherwise leave dozens of versions in the registry).
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return decide_model_policy(cfg, hydra_run=False, in_sweep=False, preset=None)
    hydra_cfg = HydraConfig.get()
    return decide_model_policy(
        cfg,
        hydra_run=True,
        in_sweep=hydra_cfg.mode == RunMode.MULTIRUN,
        preset=hydra_cfg.runtime.choices.get("experiment"),
    )


def decide_model_policy(cfg: DictConfig, hydra_run: bool, in_sweep: bool, preset: str | None) -> tuple[bool, bool]:
    """(logs, registers) for a run started through DVC (hydra_run=False) or Hydra, in a sweep or not."""
    if not cfg.tracking.log_model:
        return False, False
    register = cfg.tracking.get("register", "auto")
    if in_sweep:
        sweep_jobs = bool(cfg.tracking.get("register_sweep_jobs", False))
        return sweep_jobs, sweep_jobs and register is not False
    if register == "auto":
        register = not hydra_run or bool(preset)
    return True, bool(register)
