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

import time
from typing import cast

from omegaconf import DictConfig, OmegaConf

from pipeline.common import metric_names as names
from pipeline.config.settings import ConfigError


def estimator_params(estimator) -> dict[str, object]:
    """scikit-learn's own parameters of the estimator (and of a pipeline's steps), as `sklearn.<name>`."""
    return {
        f"sklearn.{k}": v
        for k, v in estimator.get_params(deep=True).items()
        if v is None or isinstance(v, (bool, int, float, str))
    }


def measure(cfg: DictConfig, estimator) -> dict[str, float]:
    """Fit the estimator on the networks' split and time it; the metrics the run records."""
    from pipeline.training.flat_splits import flat_splits

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = flat_splits(cfg)
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


def run_job(cfg: DictConfig) -> float:
    """One job of the sweep: its own MLflow run, FINISHED with the numbers, or KILLED/FAILED."""
    from pipeline.classical.estimators import UnknownEstimator, build
    from pipeline.stages.measurement import run_measurement

    if "baseline" not in cfg:
        raise ConfigError("no baseline chosen: run `python -m pipeline.stages.baselines experiment=claim_baselines`")
    try:  # a bad name or setting stops here, before a run or a folder is made
        settings = cast(dict, OmegaConf.to_container(cfg.baseline.settings))
        estimator = build(cfg.baseline.estimator, settings, cfg.seed)
    except UnknownEstimator as err:
        raise ConfigError(str(err)) from None  # the front door says it, exit 2, no folder left
    params = {
        "baseline.estimator": cfg.baseline.estimator,
        **{f"baseline.{k}": v for k, v in cfg.baseline.settings.items()},
        "data.val_size": cfg.data.val_size,
        "data.split_seed": cfg.data.split_seed,
        **estimator_params(estimator),
    }
    metrics = run_measurement(cfg, "baselines", cfg.baseline.name, params, lambda: measure(cfg, estimator))
    if "test/error" in metrics:
        print(
            f"[baselines] {cfg.baseline.name}: test error {100 * metrics['test/error']:.2f} %, fit "
            f"{metrics['time/fit_s']:.1f} s, {metrics['time/predict_us_per_image']:.0f} us per test image",
            flush=True,
        )
    return float(metrics.get(names.VAL_ACC, float("nan")))


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.baselines", run_job, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
