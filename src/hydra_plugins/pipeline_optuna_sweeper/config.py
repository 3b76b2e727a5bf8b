"""The sweeper's settings, registered as `hydra/sweeper=optuna_study`.

A different name from the `optuna` of hydra-optuna-sweeper (Optuna 2 only), so the two never
shadow each other where both are installed.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe | random
    seed: int | None = None


@dataclass
class OptunaStudySweeperConf:
    _target_: str = "hydra_plugins.pipeline_optuna_sweeper.sweeper.OptunaStudySweeper"
    study_name: str = "study"
    # sqlite:///path/study.db (or any SQLAlchemy URL); null keeps the study in memory only.
    storage: str | None = None
    direction: str = "maximize"
    n_trials: int = 10  # trials the study finishes in all, whichever worker runs them
    n_jobs: int = 1  # trials asked at once and handed to the launcher together
    # A worker writes a heartbeat per running trial; a trial whose worker fell silent for
    # grace_period seconds (killed, node lost) is failed and run again, at most max_retry times.
    heartbeat_interval: int = 30
    grace_period: int = 120
    max_retry: int = 2
    sampler: SamplerConf = field(default_factory=SamplerConf)
    # Search space in Hydra's sweep grammar: choice(...), interval(a, b), tag(log, interval(a, b)), range(...)
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_study", node=OptunaStudySweeperConf, provider="pipeline"
)
