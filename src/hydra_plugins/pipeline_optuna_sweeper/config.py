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
class PrunerConf:
    """Stop a weak trial early: each epoch its `val/acc` goes to the study, which may prune it.

    Steps are epochs, counted from 1 as in MLflow and history.csv. The defaults suit the few
    epochs (8) of a trial here: no trial is pruned after its first epoch alone.
    """

    name: str = "none"  # none | median | hyperband
    # median: a trial below the median of the earlier trials at the same epoch is pruned, from
    # epoch n_warmup_steps on, once n_startup_trials trials have finished.
    n_startup_trials: int = 2
    n_warmup_steps: int = 2
    # hyperband: the first rung at min_resource epochs, a third kept at each rung (reduction_factor);
    # max_resource null: the epochs of the first finished trial.
    min_resource: int = 2
    max_resource: int | None = None
    reduction_factor: int = 3


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
    pruner: PrunerConf = field(default_factory=PrunerConf)
    # Search space in Hydra's sweep grammar: choice(...), interval(a, b), tag(log, interval(a, b)), range(...)
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_study", node=OptunaStudySweeperConf, provider="pipeline"
)
