"""How a sweep job reaches its Optuna trial: through the study's storage, named in its environment.

The sweeper (`hydra/sweeper=optuna_study`) sets the three variables per job (`hydra.job.env_set`),
so a job in the sweeper's process, a joblib worker or a SLURM job on another node finds the same
trial. Only public Optuna APIs: the storage's own lookups by study name and trial number.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STORAGE_ENV = "PIPELINE_OPTUNA_STORAGE"
STUDY_ENV = "PIPELINE_OPTUNA_STUDY"
TRIAL_ENV = "PIPELINE_OPTUNA_TRIAL"
PRUNER_ATTR = "pruner"  # trial user attr: the pruner's settings, so every job judges alike
PRUNED_ATTR = "pruned_epoch"  # trial user attr: the epoch after which the job stopped, pruned
PRUNERS = ("none", "median", "hyperband")


def open_storage(url: str | None):
    """The study's storage (RDBStorage) at `url`; None keeps a study in memory."""
    if not url:
        return None  # in memory: nothing survives this process
    from optuna.storages import RDBStorage

    # Several workers write to one SQLite file: wait for the lock rather than fail.
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    for attempt in range(5):
        try:
            return RDBStorage(url, engine_kwargs=engine)
        except Exception:
            # Workers that start together race to create the tables of a new database; the
            # loser finds them made a moment later.
            if attempt == 4:
                raise
            time.sleep(1 + attempt)


def pruner_problem(settings: Mapping[str, Any]) -> str | None:
    """What is wrong with the pruner's settings (hydra.sweeper.pruner.*), with the fix; None if nothing."""
    name = settings.get("name")
    if name not in PRUNERS:
        return f"hydra.sweeper.pruner.name={name}: choose one of {', '.join(PRUNERS)}"
    minimum = {"n_startup_trials": 0, "n_warmup_steps": 0, "min_resource": 1, "reduction_factor": 2}
    for key, least in minimum.items():
        if int(settings.get(key, least)) < least:
            return f"hydra.sweeper.pruner.{key}={settings[key]}: use {least} or more"
    top = settings.get("max_resource")
    if top is not None and int(top) < int(settings.get("min_resource", 1)):
        return (
            f"hydra.sweeper.pruner.max_resource={top} is below min_resource={settings.get('min_resource')}: "
            "raise it to the trials' epochs, or null for the epochs of the first finished trial"
        )
    return None


def make_pruner(settings: Mapping[str, Any]):
    """The Optuna pruner of hydra.sweeper.pruner (name none: one that never prunes)."""
    import optuna

    name = settings["name"]
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(settings["n_startup_trials"]), n_warmup_steps=int(settings["n_warmup_steps"])
        )
    if name == "hyperband":
        top = settings.get("max_resource")
        return optuna.pruners.HyperbandPruner(
            min_resource=int(settings["min_resource"]),
            max_resource="auto" if top is None else int(top),
            reduction_factor=int(settings["reduction_factor"]),
        )
    return optuna.pruners.NopPruner()


def job_env(storage_url: str, study_name: str, trial_number: int) -> dict[str, str]:
    """The environment that names a job's trial."""
    return {STORAGE_ENV: storage_url, STUDY_ENV: study_name, TRIAL_ENV: str(trial_number)}


@dataclass(frozen=True)
class TrialRef:
    storage_url: str
    study_name: str
    number: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrialRef | None:
        """The trial this process trains for, if a pruning sweep started it."""
        env = os.environ if env is None else env
        if not all(env.get(k) for k in (STORAGE_ENV, STUDY_ENV, TRIAL_ENV)):
            return None
        return cls(env[STORAGE_ENV], env[STUDY_ENV], int(env[TRIAL_ENV]))


class TrialReporter:
    """Epoch values of one trial into its study, and the study's verdict on pruning it."""

    def __init__(self, ref: TrialRef):
        import optuna

        self.storage = open_storage(ref.storage_url)
        study_id = self.storage.get_study_id_from_name(ref.study_name)
        self.trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, ref.number)
        settings = self.storage.get_trial(self.trial_id).user_attrs.get(PRUNER_ATTR, {"name": "none"})
        self.study = optuna.load_study(
            study_name=ref.study_name,
            storage=self.storage,
            sampler=optuna.samplers.RandomSampler(),  # never samples here; spares building a TPE sampler
            pruner=make_pruner(settings),
        )

    def report(self, epoch: int, value: float) -> bool:
        """Record `value` at `epoch`; True if the study prunes the trial now (then recorded on it)."""
        self.storage.set_trial_intermediate_value(self.trial_id, epoch, value)
        if not self.study.pruner.prune(self.study, self.storage.get_trial(self.trial_id)):
            return False
        self.storage.set_trial_user_attr(self.trial_id, PRUNED_ATTR, epoch)
        return True
