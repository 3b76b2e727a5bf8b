"""A Hydra sweeper that runs one Optuna (>= 4) study, kept in a database, shared by workers.

    python -m pipeline.stages.train +experiment=optuna_mlp hydra.sweeper.storage=sqlite:///study.db

- Persistent: with `storage` set, finished trials stay in the database. Run the same command
  again (after a kill, or to add trials) and the study goes on: `n_trials` counts the trials
  the study finished in all, not those of this process.
- Shared: several workers (processes, SLURM jobs) running the same command draw trials from
  the one study; Optuna hands each trial to exactly one worker.
- A killed worker leaves trials RUNNING. Each worker writes a heartbeat for its trials; a trial
  silent for `grace_period` seconds is failed and queued again with the same parameters.
- MLflow: the first worker's sweep parent run becomes the study's parent run; every trial is
  one child run of it, and the best trial so far is logged on it.
- Pruning (`pruner.name=median|hyperband`): each job reports `val/acc` per epoch to its trial
  through the storage (pipeline.training.optuna_pruning), named by the variables of
  pipeline.training.optuna_trial in its `hydra.job.env_set`; a job the study prunes stops training
  and skips evaluation, and its trial is told PRUNED here. Without `storage`, pruning keeps the
  study in `<sweep dir>/optuna.db`, which jobs in other processes can reach.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from pipeline.stages.sweep import RETRIED_TAG
from pipeline.training.optuna_trial import (
    PRUNED_ATTR,
    PRUNER_ATTR,
    job_env,
    make_pruner,
    open_storage,
    pruner_problem,
)

PRUNED_METRIC = "optuna/pruned"  # on the parent run: trials of the study pruned so far
PARENT_ATTR = "mlflow.parent_run_id"
OUTPUT_ATTR = "output_dir"
HEARTBEAT_ATTR = "heartbeat"


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
    raise ValueError(
        f"{override.input_line}: use choice(...), range(...) or interval(a, b) for a search "
        f"dimension, or a single value"
    )


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


def open_study(name: str, storage, sampler, direction: str):
    """(study, created): create it, or join the one another worker created."""
    import optuna

    try:
        return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction=direction), True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        if study.direction.name.lower() != direction.lower():
            raise ValueError(
                f"study '{name}' exists with direction {study.direction.name.lower()}, not "
                f"{direction}: choose another hydra.sweeper.study_name"
            ) from None
        return study, False


def make_sampler(conf, salt: str = ""):
    import hashlib

    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if conf.name not in samplers:
        raise ValueError(f"hydra.sweeper.sampler.name={conf.name}: choose one of {sorted(samplers)}")
    seed = conf.seed
    if seed is not None and salt:
        seed = int.from_bytes(hashlib.sha256(f"{seed}:{salt}".encode()).digest()[:4], "little")
    return samplers[conf.name](seed=seed)


def finished_count(study) -> int:
    """Trials that count towards n_trials: complete, pruned, or failed and not queued again."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials} - {None}
    return sum(
        1
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in retried)
    )


def beat(storage, trial_id: int) -> None:
    if storage is not None:  # in memory, no other process could take over the trial
        storage.set_trial_user_attr(trial_id, HEARTBEAT_ATTR, time.time())


@contextlib.contextmanager
def heartbeat(storage, trial_ids: list[int], interval: float):
    """Tell the study these trials are alive while the launcher runs them."""
    stop = threading.Event()

    def loop():
        while not stop.wait(interval):
            for trial_id in trial_ids:
                with contextlib.suppress(Exception):  # a missed beat is harmless; the next one counts
                    beat(storage, trial_id)

    thread = threading.Thread(target=loop, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_stale_trials(study, grace_period: float, max_retry: int) -> list:
    """RUNNING trials whose worker fell silent (killed, node lost): failed, and queued again with
    the same parameters (at most max_retry times). Returns the trials this worker failed.

    A trial counts from its last heartbeat, or from its start when killed before the first one.
    Optuna's own heartbeats skip such a trial forever, hence these.
    """
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    now, failed = time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = trial.user_attrs.get(HEARTBEAT_ATTR) or trial.datetime_start.timestamp()
        if now - last <= grace_period:
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError, optuna.exceptions.OptunaError):
            continue  # another worker failed it first
        failed.append(trial)
        (now_failed,) = [t for t in study.get_trials(deepcopy=False) if t.number == trial.number]
        RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, now_failed)
    return failed


class OptunaStudySweeper(Sweeper):
    def __init__(self, **conf: Any) -> None:
        self.conf = OmegaConf.create(conf)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)
        # The sweep callback (pipeline.stages.sweep) refuses a bad pruner before the parent run exists;
        # checked again here for a config without that callback.
        problem = pruner_problem(OmegaConf.to_container(self.conf.pruner))  # type: ignore[arg-type]
        if problem:
            from pipeline.stages.cli import refuse

            refuse(problem)

    def _storage_url(self) -> str | None:
        """The study's storage. Pruning needs one that every job can reach, wherever it runs: without
        `storage`, a SQLite file in the sweep folder (new per sweep, as an in-memory study would be)."""
        if self.conf.storage or self.conf.pruner.name == "none":
            return self.conf.storage
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.sweep_dir / 'optuna.db').absolute()}"

    # -- MLflow ---------------------------------------------------------------------------------
    def _run(self, run_id: str):
        """A run of this sweep's store."""
        from pipeline.tracking.client import resolve_uri
        from pipeline.tracking.runs import Run

        return Run(resolve_uri(self.config.tracking.uri), run_id)

    def _join_parent_run(self, study, created: bool) -> str | None:
        """The study's parent run: this sweep's own when it created the study, else the creator's."""
        from pipeline.tracking import sweeps

        own = sweeps.sweep_parent_id()
        if created and own:
            study.set_user_attr(PARENT_ATTR, own)
            self._run(own).set_tags({"optuna.study": study.study_name, "optuna.storage": str(self.conf.storage)})
            return own
        deadline = time.monotonic() + 120
        while PARENT_ATTR not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(1)  # the creating worker is recording it
        parent = study.user_attrs.get(PARENT_ATTR)
        if parent and own and parent != own:
            self._run(own).end()
            self._run(own).delete()  # this sweep's empty parent: its trials go to the study's
            sweeps.announce_sweep_parent(parent)
            self._run(parent).open()
            print(f"[optuna] study '{study.study_name}' continues; trials join MLflow parent run {parent}", flush=True)
        return parent

    def _record_trial(self, trial_number: int, ret) -> str | None:
        """Tag the trial's MLflow child run; returns its run id."""
        from pipeline.tracking import run_ref

        try:
            run_dir = Path(ret.cfg.run_dir) if ret.cfg is not None else None
            ref = run_ref.read(run_dir)
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            return None
        self._run(ref["run_id"]).set_tags({"optuna.trial": str(trial_number)})
        return ref["run_id"]

    def _end_stale_runs(self, stale) -> None:
        """Trials of a killed worker: their MLflow runs end KILLED, not RUNNING forever."""
        from pipeline.tracking import run_ref

        for trial in stale:
            out = trial.user_attrs.get(OUTPUT_ATTR)
            if out is None:  # killed before its job started: no MLflow run yet
                continue
            with contextlib.suppress(FileNotFoundError, ValueError):
                run = self._run(run_ref.read(out)["run_id"])
                run.end_if_running("KILLED")
                # The sweep's failure count skips it: the trial runs again under a new number.
                run.set_tags({"optuna.trial": str(trial.number), RETRIED_TAG: "true"})

    def _log_best(self, study, parent: str | None) -> None:
        from optuna.trial import TrialState

        if parent and self.conf.pruner.name != "none":
            pruned = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED)
            self._run(parent).log_metrics({PRUNED_METRIC: pruned})
        if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
            return
        best = study.best_trial
        results = {
            "name": study.study_name,
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": dict(best.params),
        }
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        (self.sweep_dir / "optimization_results.yaml").write_text(yaml.safe_dump(results, sort_keys=False))
        print(f"[optuna] best trial {best.number}: value {best.value:.4f}, params {dict(best.params)}", flush=True)
        if parent:
            run = self._run(parent)
            run.log_metrics({"best/value": best.value, "best/trial": best.number})
            run.set_tags(
                {
                    "best.trial": str(best.number),
                    **{f"best.params.{k}": str(v) for k, v in best.params.items()},
                    **({"best.run_id": best.user_attrs["mlflow.run_id"]} if "mlflow.run_id" in best.user_attrs else {}),
                },
            )

    # -- the loop -------------------------------------------------------------------------------
    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        # RetryHeartbeatStaleTrialCallback is flagged experimental; this sweeper relies on it on purpose
        # (the resume test covers it).
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        from optuna.trial import TrialState

        c = self.conf
        space, fixed = search_space(OmegaConf.to_container(c.params, resolve=True) if c.params else {}, arguments)
        url = self._storage_url()
        storage = open_storage(url)
        study, created = open_study(c.study_name, storage, make_sampler(c.sampler), c.direction)
        pruner_settings = OmegaConf.to_container(c.pruner)
        pruning = c.pruner.name != "none"
        study.pruner = make_pruner(pruner_settings)  # type: ignore[arg-type]
        # Trials are named by number; the storage maps a number to its id (public lookups only).
        study_id = storage.get_study_id_from_name(study.study_name) if storage is not None else None
        if not created:
            # A worker that joins (or resumes) the study must not replay the creator's seeded
            # draws: the same seed would propose the same parameters again.
            study.sampler = make_sampler(c.sampler, salt=f"{socket.gethostname()}:{os.getpid()}:{len(study.trials)}")
        parent = self._join_parent_run(study, created)
        print(
            f"[optuna] study '{study.study_name}' ({'new' if created else 'joined'}, storage "
            f"{url or 'in memory'}): {finished_count(study)}/{c.n_trials} trials finished"
            + (f"; pruner {c.pruner.name}" if pruning else ""),
            flush=True,
        )

        while True:
            if storage is not None:
                self._end_stale_runs(fail_stale_trials(study, c.grace_period, c.max_retry))
            trials = study.get_trials(deepcopy=False)
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
            ids = (
                [storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in asked]
                if storage is not None
                else []
            )
            for trial_id in ids:
                beat(storage, trial_id)
            jobs = []
            for trial in asked:
                out = self.sweep_dir / f"trial-{trial.number}"
                trial.set_user_attr(OUTPUT_ATTR, str(out))
                values = [f"{name}={_hydra_value(v)}" for name, v in trial.params.items()]
                env: list[str] = []
                if pruning:  # the job reports to its trial through the storage (pipeline.training.optuna_pruning)
                    trial.set_user_attr(PRUNER_ATTR, pruner_settings)
                    names = job_env(str(url), study.study_name, trial.number)
                    env = [f"++hydra.job.env_set.{k}={_quoted(v)}" for k, v in names.items()]
                jobs.append([*fixed, *values, f"hydra.sweep.subdir=trial-{trial.number}", *env])
            with heartbeat(storage, ids, c.heartbeat_interval):
                returns = self.launcher.launch(jobs, initial_job_idx=asked[0].number)
            for i, (trial, ret) in enumerate(zip(asked, returns, strict=False)):
                run_id = self._record_trial(trial.number, ret)
                if run_id:
                    trial.set_user_attr("mlflow.run_id", run_id)
                value = ret.return_value if ret.status == JobStatus.COMPLETED else None
                pruned_at = storage.get_trial(ids[i]).user_attrs.get(PRUNED_ATTR) if pruning else None
                if pruned_at is not None and ret.status == JobStatus.COMPLETED:
                    study.tell(trial, state=TrialState.PRUNED)
                    print(f"[optuna] trial {trial.number} pruned after epoch {pruned_at}", flush=True)
                elif value is None or (isinstance(value, float) and math.isnan(value)):
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


def _quoted(text: str) -> str:
    """A value in Hydra's override grammar, quoted (a storage URL has ':' and '/'), escapes as in Python."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
