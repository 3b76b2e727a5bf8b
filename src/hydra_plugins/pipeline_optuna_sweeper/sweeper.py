"""A Hydra sweeper that runs one Optuna (>= 4) study, kept in a database, shared by workers.

    python -m pipeline.train +experiment=optuna_mlp hydra.sweeper.storage=sqlite:///study.db

- Persistent: with `storage` set, finished trials stay in the database. Run the same command
  again (after a kill, or to add trials) and the study goes on: `n_trials` counts the trials
  the study finished in all, not those of this process.
- Shared: several workers (processes, SLURM jobs) running the same command draw trials from
  the one study; Optuna hands each trial to exactly one worker.
- A killed worker leaves trials RUNNING. Each worker writes a heartbeat for its trials; a trial
  silent for `grace_period` seconds is failed and queued again with the same parameters.
- MLflow: the first worker's sweep parent run becomes the study's parent run; every trial is
  one child run of it, and the best trial so far is logged on it.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

PARENT_ATTR = "mlflow.parent_run_id"
OUTPUT_ATTR = "output_dir"


def distribution(override: Override):
    """Hydra's sweep grammar -> an Optuna distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        return CategoricalDistribution(list(override.sweep_iterator()))
    if isinstance(value, IntervalSweep):
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ValueError(f"{override.input_line}: use choice(...), range(...) or interval(a, b) for a search "
                     f"dimension, or a single value")


def search_space(params: dict, arguments: Sequence[str]) -> tuple[dict, list[str]]:
    """(name -> distribution, fixed overrides): the config's params, then the command line's."""
    parser = OverridesParser.create()
    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    space, fixed = {}, []
    for override in parser.parse_overrides(lines):
        name = override.get_key_element()
        if override.is_sweep_override():
            space[name] = distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed


def open_storage(url: str | None, heartbeat_interval: int, grace_period: int, max_retry: int):
    if not url:
        return None  # in memory: nothing survives this process
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat_interval,
                      grace_period=grace_period, failed_trial_callback=RetryFailedTrialCallback(max_retry=max_retry))


def open_study(name: str, storage, sampler, direction: str):
    """(study, created): create it, or join the one another worker created."""
    import optuna

    try:
        return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction=direction), True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        if study.direction.name.lower() != direction.lower():
            raise ValueError(f"study '{name}' exists with direction {study.direction.name.lower()}, not "
                             f"{direction}: choose another hydra.sweeper.study_name") from None
        return study, False


def make_sampler(conf):
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if conf.name not in samplers:
        raise ValueError(f"hydra.sweeper.sampler.name={conf.name}: choose one of {sorted(samplers)}")
    return samplers[conf.name](seed=conf.seed)


def finished_count(study) -> int:
    """Trials that count towards n_trials: complete, pruned, or failed and not queued again."""
    from optuna.storages import RetryFailedTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {RetryFailedTrialCallback.retried_trial_number(t) for t in trials} - {None}
    return sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and t.number not in retried))


@contextlib.contextmanager
def heartbeat(storage, trial_ids: list[int], interval: float):
    """Tell the study these trials are alive while the launcher runs them."""
    if storage is None:
        yield
        return
    stop = threading.Event()

    def beat():
        while True:
            for trial_id in trial_ids:
                with contextlib.suppress(Exception):  # a missed beat is harmless; the next one counts
                    storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class OptunaStudySweeper(Sweeper):
    def __init__(self, **conf: Any) -> None:
        self.conf = OmegaConf.create(conf)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        self.sweep_dir = Path(config.hydra.sweep.dir)

    # -- MLflow ---------------------------------------------------------------------------------
    def _tracking(self):
        from pipeline import tracking

        return tracking, tracking.resolve_uri(self.config.tracking.uri)

    def _join_parent_run(self, study, created: bool) -> str | None:
        """The study's parent run: this sweep's own when it created the study, else the creator's."""
        from pipeline.sweep import PARENT_ENV

        tracking, uri = self._tracking()
        own = os.environ.get(PARENT_ENV)
        if created and own:
            study.set_user_attr(PARENT_ATTR, own)
            tracking.set_tags(uri, own, {"optuna.study": study.study_name, "optuna.storage": str(self.conf.storage)})
            return own
        deadline = time.monotonic() + 120
        while PARENT_ATTR not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(1)  # the creating worker is recording it
        parent = study.user_attrs.get(PARENT_ATTR)
        if parent and own and parent != own:
            tracking.delete_run(uri, own)  # this sweep's empty parent: its trials go to the study's
            os.environ[PARENT_ENV] = parent
            tracking.reopen_run(uri, parent)
            print(f"[optuna] study '{study.study_name}' continues; trials join MLflow parent run {parent}",
                  flush=True)
        return parent

    def _record_trial(self, trial_number: int, ret) -> str | None:
        """Tag the trial's MLflow child run; returns its run id."""
        tracking, uri = self._tracking()
        try:
            run_dir = Path(ret.cfg.run_dir) if ret.cfg is not None else None
            ref = tracking.read_run_ref(run_dir)
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            return None
        tracking.set_tags(uri, ref["run_id"], {"optuna.trial": str(trial_number)})
        return ref["run_id"]

    def _end_stale_runs(self, stale) -> None:
        """Trials of a killed worker: their MLflow runs end KILLED, not RUNNING forever."""
        tracking, uri = self._tracking()
        for trial in stale:
            out = trial.user_attrs.get(OUTPUT_ATTR)
            with contextlib.suppress(FileNotFoundError, ValueError):
                ref = tracking.read_run_ref(out)
                tracking.end_run_if_running(uri, ref["run_id"], "KILLED")

    def _log_best(self, study, parent: str | None) -> None:
        from optuna.trial import TrialState

        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            return
        best = study.best_trial
        results = {"name": study.study_name, "best_trial": best.number, "best_value": best.value,
                   "best_params": dict(best.params)}
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        (self.sweep_dir / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
        print(f"[optuna] best trial {best.number}: value {best.value:.4f}, params {dict(best.params)}", flush=True)
        if parent:
            tracking, uri = self._tracking()
            tracking.log_metrics(uri, parent, {"best/value": best.value, "best/trial": best.number})
            tracking.set_tags(uri, parent, {"best.trial": str(best.number),
                                            **{f"best.params.{k}": str(v) for k, v in best.params.items()},
                                            **({"best.run_id": best.user_attrs["mlflow.run_id"]}
                                               if "mlflow.run_id" in best.user_attrs else {})})

    # -- the loop -------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        # Heartbeats outside Study.optimize and their helpers are flagged experimental; this
        # sweeper relies on them on purpose (tests cover them).
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        from optuna.trial import TrialState

        c = self.conf
        space, fixed = search_space(OmegaConf.to_container(c.params, resolve=True) if c.params else {}, arguments)
        storage = open_storage(c.storage, c.heartbeat_interval, c.grace_period, c.max_retry)
        study, created = open_study(c.study_name, storage, make_sampler(c.sampler), c.direction)
        parent = self._join_parent_run(study, created)
        print(f"[optuna] study '{study.study_name}' ({'new' if created else 'joined'}, storage "
              f"{c.storage or 'in memory'}): {finished_count(study)}/{c.n_trials} trials finished", flush=True)

        while True:
            running_before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
            if storage is not None:
                optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            self._end_stale_runs([t for t in trials if t.number in running_before and t.state == TrialState.FAIL])
            waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
            running = sum(1 for t in trials if t.state == TrialState.RUNNING)
            fresh = c.n_trials - finished_count(study) - running - waiting
            batch = min(c.n_jobs, waiting + max(fresh, 0))
            if batch <= 0:
                if running == 0:
                    break
                time.sleep(min(c.heartbeat_interval, 10))  # other workers' trials, or a killed one's
                continue
            asked = [study.ask(space) for _ in range(batch)]
            jobs = []
            for trial in asked:
                out = self.sweep_dir / f"trial-{trial.number}"
                trial.set_user_attr(OUTPUT_ATTR, str(out))
                values = [f"{name}={_hydra_value(v)}" for name, v in trial.params.items()]
                jobs.append([*fixed, *values, f"hydra.sweep.subdir=trial-{trial.number}"])
            with heartbeat(storage, [t._trial_id for t in asked], c.heartbeat_interval):
                returns = self.launcher.launch(jobs, initial_job_idx=asked[0].number)
            for trial, ret in zip(asked, returns):
                run_id = self._record_trial(trial.number, ret)
                if run_id:
                    trial.set_user_attr("mlflow.run_id", run_id)
                value = ret.return_value if ret.status == JobStatus.COMPLETED else None
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    study.tell(trial, state=TrialState.FAIL)
                    print(f"[optuna] trial {trial.number} failed", flush=True)
                else:
                    study.tell(trial, float(value))
            self._log_best(study, parent)
        self._log_best(study, parent)
        return study


def _hydra_value(value: Any) -> str:
    """A sampled value as a Hydra override value (strings quoted when needed)."""
    if isinstance(value, str):
        return value if value.replace("_", "").replace("-", "").replace(".", "").isalnum() else repr(value)
    return str(value)
