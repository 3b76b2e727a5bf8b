"""Baselines stage: a classical classifier (scikit-learn) on the split the networks train on.

    python -m pipeline.stages.baselines experiment=claim_baselines      # all six, one sweep
    python -m pipeline.stages.baselines experiment=claim_baselines baseline=knn

Each job fits one estimator on the networks' 55,000 training images (pixels / 255, flattened),
measures validation and test accuracy, fit time and prediction time per image, and records them
as an MLflow run (a child of the sweep's parent run) with the estimator's parameters. The fitted
model is not logged: a pickled estimator is code to whoever loads it, and the k-NN's would be the
whole training set; each is refit from its logged parameters in at most minutes.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import cast

from omegaconf import DictConfig, OmegaConf

from pipeline.common import atomic
from pipeline.common import metric_names as names
from pipeline.config.settings import ConfigError


def _arrays(cfg: DictConfig):
    """(train, val, test) as float32 (N, 784) arrays in [0, 1] with int labels: the networks' split."""
    from pipeline.data.mnist import load_split
    from pipeline.training.datamodule import MNISTDataModule

    data = MNISTDataModule.from_config(cfg)
    data.prepare_data()
    data.setup("fit")
    test = load_split(cfg.data.root, "test")

    def flat(images, labels):
        return images.reshape(len(images), -1).float().div(255).numpy(), labels.numpy()

    return flat(*data.splits["train"]), flat(*data.splits["val"]), flat(*test)


def estimator_params(estimator) -> dict[str, object]:
    """scikit-learn's own parameters of the estimator (and of a pipeline's steps), as `sklearn.<name>`."""
    return {
        f"sklearn.{k}": v
        for k, v in estimator.get_params(deep=True).items()
        if v is None or isinstance(v, (bool, int, float, str))
    }


def measure(cfg: DictConfig, estimator) -> dict[str, float]:
    """Fit the estimator on the networks' split and time it; the metrics the run records."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = _arrays(cfg)
    print(f"[baselines] {cfg.baseline.name}: fitting {estimator!r} on {len(y_train):,} images ...", flush=True)
    cpu, started = time.process_time(), time.perf_counter()
    estimator.fit(x_train, y_train)
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    val_acc = float((estimator.predict(x_val) == y_val).mean())
    started = time.perf_counter()
    predicted = estimator.predict(x_test)
    predict_s = time.perf_counter() - started
    test_acc = float((predicted == y_test).mean())
    return {
        names.TEST_ACC: test_acc,
        "test/error": 1 - test_acc,
        names.VAL_ACC: val_acc,
        "time/fit_s": fit_s,
        "time/fit_cpu_s": fit_cpu_s,
        "time/predict_s": predict_s,
        "time/predict_us_per_image": 1e6 * predict_s / len(y_test),
    }


def finished_job(uri: str, parent_id: str, tags: dict[str, str]):
    """The FINISHED run of this sweep job (same number, same overrides) under `parent_id`, if any."""
    from pipeline.tracking.runs import Run
    from pipeline.tracking.sweeps import child_runs

    for child in child_runs(Run(uri, parent_id)):
        same = all(child.data.tags.get(k) == tags.get(k) for k in ("sweep.job", "hydra.overrides"))
        if same and child.info.status == "FINISHED":
            return child
    return None


def run_job(cfg: DictConfig) -> float:
    """One job of the sweep: its own MLflow run, FINISHED with the numbers, or KILLED/FAILED."""
    from hydra.core.hydra_config import HydraConfig

    from pipeline.classical.estimators import UnknownEstimator, build
    from pipeline.data.mnist import dataset_record
    from pipeline.tracking.client import resolve_uri
    from pipeline.tracking.provenance import git_state, hydra_tags
    from pipeline.tracking.runs import create_run, end_status
    from pipeline.tracking.sweeps import sweep_parent_id

    if "baseline" not in cfg:
        raise ConfigError("no baseline chosen: run `python -m pipeline.stages.baselines experiment=claim_baselines`")
    try:  # a bad name or setting stops here, before a run or a folder is made
        settings = cast(dict, OmegaConf.to_container(cfg.baseline.settings))
        estimator = build(cfg.baseline.estimator, settings, cfg.seed)
    except UnknownEstimator as err:
        raise ConfigError(str(err)) from None  # the front door says it, exit 2, no folder left
    overrides = cast(list[str], OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))
    command = "python -m pipeline.stages.baselines " + " ".join(shlex.quote(o) for o in overrides)
    tags = {
        "mlflow.runName": f"{cfg.baseline.name}-s{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}",
        "mlflow.note.content": f"Reproduce with:\n\n    {command.strip()}",
        "model": cfg.baseline.name,
        "seed": str(cfg.seed),
        "hydra.overrides": " ".join(overrides) or "none",
        **git_state(),
        **hydra_tags(),
    }
    if parent := sweep_parent_id():
        tags["mlflow.parentRunId"] = parent
        kept = finished_job(resolve_uri(cfg.tracking.uri), parent, tags)
        if kept is not None:  # the same sweep again, after it failed: a finished job is kept, not refit
            print(f"[baselines] {cfg.baseline.name}: finished in run {kept.info.run_id}; kept", flush=True)
            return float(kept.data.metrics.get(names.VAL_ACC, float("nan")))
    run = create_run(resolve_uri(cfg.tracking.uri), cfg.tracking.experiment, tags["mlflow.runName"], tags)
    try:
        run.log_params(
            {
                "seed": cfg.seed,
                "model.name": cfg.baseline.name,
                "baseline.estimator": cfg.baseline.estimator,
                **{f"baseline.{k}": v for k, v in cfg.baseline.settings.items()},
                "data.val_size": cfg.data.val_size,
                "data.split_seed": cfg.data.split_seed,
                **estimator_params(estimator),
            }
        )
        record = dataset_record(cfg.data)
        run.log_dataset(record["name"], record["digest"], record["source"], record["profile"])
        metrics = measure(cfg, estimator)
        run.log_metrics(metrics)
        out = Path(cfg.run_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / "metrics.json", {"baseline": cfg.baseline.name, "run_id": run.run_id, **metrics})
    except BaseException as err:
        run.end(end_status(err))
        if isinstance(err, Exception) and sweep_parent_id():  # named with its overrides, counted by the parent
            from pipeline.stages.sweep_jobs import report_failed_job

            report_failed_job(cfg.run_dir, overrides, err)
        raise
    run.end("FINISHED")
    print(
        f"[baselines] {cfg.baseline.name}: test error {100 * metrics['test/error']:.2f} %, fit "
        f"{metrics['time/fit_s']:.1f} s, {metrics['time/predict_us_per_image']:.0f} us per test image; "
        f"MLflow run {run.run_id}",
        flush=True,
    )
    return metrics[names.VAL_ACC]


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.baselines", run_job, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
