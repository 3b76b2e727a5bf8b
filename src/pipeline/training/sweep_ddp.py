"""Multi-process DDP inside a Hydra sweep: each job starts its own ranks, once."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from omegaconf import DictConfig


@contextlib.contextmanager
def one_ddp_job(cfg: DictConfig):
    """Lightning starts ranks 1..N-1 by re-running sys.argv plus `hydra.run.dir=<run dir>`.
    In a multirun, sys.argv holds `-m` and every sweep value, so each rank would launch
    a whole sweep of its own: give it this job's overrides instead, in this job's directory.
    Lightning also leaves its rendezvous variables (LOCAL_RANK, MASTER_PORT, ...) in the
    environment and the process group open; the next job would take them as "ranks already
    started" and wait for ranks that are gone. Restore both after each job.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or "ddp" not in str(cfg.trainer.strategy):
        yield
        return
    saved_argv, saved_env = list(sys.argv), dict(os.environ)
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task, f"run_dir={Path(cfg.run_dir).resolve()}", "hydra.mode=RUN"]
    # HydraConfig.get() is typed as the HydraConf dataclass but returns a DictConfig at run time.
    with read_write(hydra_cfg), open_dict(hydra_cfg):  # type: ignore[arg-type]
        hydra_cfg.run.dir = str(Path(hydra_cfg.runtime.output_dir).resolve())
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
