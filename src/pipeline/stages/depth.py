"""Depth stage: what depth buys a ReLU net, measured (claim 12).

    python -m pipeline.stages.depth experiment=claim_depth             # both jobs, one sweep
    python -m pipeline.stages.depth experiment=claim_depth depth.part=regions hydra.mode=RUN

`depth.part=sawtooth`: for each k, the smallest one-hidden-layer width whose trained fit of the tent map
composed k times reaches the target RMSE, beside the deep net of 2 ReLUs in each of k hidden
layers that computes it exactly, and the same deep shape trained from a random start.
`depth.part=regions`: MLPs with the same number of neurons at several depths, trained on the
networks' split; the linear regions each cuts along segments between test digits, before and
after training, beside the most a net of its shape could cut. Each job is an MLflow run.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import cast

from omegaconf import DictConfig

from pipeline.config.settings import ConfigError

PARTS = ("sawtooth", "regions")


def measure_sawtooth(cfg: DictConfig) -> dict[str, float]:
    import torch

    from pipeline.nn import depth

    settings = cfg.depth.sawtooth
    metrics: dict[str, float] = {}
    for k in settings.ks:
        started = time.perf_counter()
        found = depth.smallest_shallow_width(k, settings.target_rmse, cfg.seed, settings.steps)
        width = found["width"]
        trained = []
        for restart in range(settings.deep_restarts):
            torch.manual_seed(cfg.seed * 1000 + restart)
            trained.append(depth.train(depth.deep_narrow_net(k), k, settings.steps, lr=1e-2))
        key = f"sawtooth/k{k}"
        metrics |= {
            f"{key}/pieces": 2**k,
            f"{key}/shallow_width": float(width) if width else math.nan,
            f"{key}/shallow_rmse": found["tried"][width] if width else min(found["tried"].values()),
            f"{key}/shallow_fits": len(found["tried"]),
            f"{key}/deep_neurons": 2 * k,
            f"{key}/deep_rmse": depth.rmse(depth.sawtooth_net(k), k),
            f"{key}/deep_trained_rmse": min(trained),
            f"{key}/seconds": time.perf_counter() - started,
        }
        print(
            f"[depth] sawtooth k={k} ({2**k} pieces): one hidden layer needs width "
            f"{width if width else '> ' + str(max(found['tried']))} for RMSE <= {settings.target_rmse}; "
            f"{2 * k} neurons in {k} layers compute it exactly (RMSE {metrics[f'{key}/deep_rmse']:.1e}); "
            f"that shape trained from a random start: RMSE {min(trained):.3f} "
            f"({metrics[f'{key}/seconds']:.0f} s)",
            flush=True,
        )
    return metrics


def _mlp(hidden: list[int]):
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in zip([784, *hidden], hidden, strict=False):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(hidden[-1], 10))


def measure_regions(cfg: DictConfig) -> dict[str, float]:
    import torch

    from pipeline.nn.depth import max_regions_on_a_line, regions_along_line
    from pipeline.training.flat_splits import flat_splits

    settings = cfg.depth.regions
    (x_train, y_train), _, (x_test, y_test) = flat_splits(cfg)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test).long()
    lines = [(x_test[2 * i], x_test[2 * i + 1]) for i in range(settings.lines)]

    def regions(model, points: int) -> float:
        return statistics.fmean(regions_along_line(model, a, b, points) for a, b in lines)

    metrics: dict[str, float] = {}
    for hidden in settings.hidden:
        hidden = list(hidden)
        started = time.perf_counter()
        torch.manual_seed(cfg.seed)
        model = _mlp(hidden)
        key = f"regions/depth{len(hidden)}"
        metrics[f"{key}/init"] = regions(model, settings.points)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        order = torch.Generator().manual_seed(cfg.seed)
        for _ in range(settings.epochs):
            for batch in torch.randperm(len(x_train), generator=order).split(settings.batch_size):
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
                optimizer.step()
        with torch.no_grad():
            test_acc = float((model(x_test).argmax(1) == y_test).float().mean())
        metrics |= {
            f"{key}/neurons": sum(hidden),
            f"{key}/parameters": sum(p.numel() for p in model.parameters()),
            f"{key}/trained": regions(model, settings.points),
            f"{key}/trained_double_points": regions(model, 2 * settings.points),
            f"{key}/log10_max_regions": math.log10(max_regions_on_a_line(hidden)),
            f"{key}/test_acc": test_acc,
            f"{key}/seconds": time.perf_counter() - started,
        }
        print(
            f"[depth] regions, hidden {hidden}: {metrics[f'{key}/init']:.0f} linear regions along a segment "
            f"between test digits at initialisation, {metrics[f'{key}/trained']:.0f} after training "
            f"(at most 10^{metrics[f'{key}/log10_max_regions']:.1f}); test accuracy {100 * test_acc:.2f} % "
            f"({metrics[f'{key}/seconds']:.0f} s)",
            flush=True,
        )
    return metrics


def run_job(cfg: DictConfig) -> float:
    """One job of the sweep (one part of the claim): its own MLflow run."""
    from omegaconf import OmegaConf

    from pipeline.stages.measurement import run_measurement

    if "depth" not in cfg:
        raise ConfigError("no depth part chosen: run `python -m pipeline.stages.depth experiment=claim_depth`")
    part = str(cfg.depth.part)
    if part not in PARTS:
        raise ConfigError(f"depth.part={part}: the depth stage measures one of {', '.join(PARTS)}")
    settings = cast(dict, OmegaConf.to_container(cfg.depth[part]))
    params = {f"depth.{part}.{k}": v for k, v in settings.items()} | {"data.split_seed": cfg.data.split_seed}
    measure = measure_sawtooth if part == "sawtooth" else measure_regions
    metrics = run_measurement(cfg, "depth", part, params, lambda: measure(cfg))
    accuracies = [v for k, v in metrics.items() if k.endswith("/test_acc")]
    return max(accuracies, default=math.nan)  # what a sweeper would rank jobs by


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.depth", run_job, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
