"""Composition stage: do networks combine digits they know into sums they never saw (claim 14)?

    python -m pipeline.stages.composition experiment=claim_composition                 # 3 splits, one sweep
    python -m pipeline.stages.composition experiment=claim_composition composition.split=4 hydra.mode=RUN

One job per split: its 10 held-out digit pairs (nn/digit_pairs.py), an end-to-end MLP and a factored
model (a digit MLP on each half, a fixed adder) trained on images of the other 90 pairs made from
the networks' training split, and both tested on pairs made from the test split: the 90 seen pairs
and the 10 unseen ones. Each job is an MLflow run.
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from pipeline.config.settings import ConfigError

MODELS = ("end_to_end", "factored")


def pair_name(pair: tuple[int, int]) -> str:
    return f"{pair[0]}+{pair[1]}"


def measure(cfg: DictConfig) -> dict[str, float]:
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.nn import digit_pairs as dp
    from pipeline.training.datamodule import MNISTDataModule

    settings = cfg.composition
    data = MNISTDataModule.from_config(cfg)
    data.prepare_data()
    data.setup("fit")
    train_images, train_labels = data.splits["train"]
    test_images, test_labels = load_split(cfg.data.root, "test")
    held = dp.held_out_pairs(int(settings.split))
    seen = [(a, b) for a in range(10) for b in range(10) if (a, b) not in held]
    seed = cfg.seed
    x, y, _ = dp.make_pairs(train_images, train_labels, seen, settings.per_pair_train, seed)
    x_seen, y_seen, _ = dp.make_pairs(test_images, test_labels, seen, settings.per_pair_test, seed + 1)
    x_new, y_new, new_index = dp.make_pairs(test_images, test_labels, held, settings.per_pair_test, seed + 2)
    digits = test_images.unsqueeze(1).float().div(255)
    metrics: dict[str, float] = {}
    for name in MODELS:
        started = time.perf_counter()
        torch.manual_seed(seed)
        model = dp.EndToEnd(list(settings.hidden)) if name == "end_to_end" else dp.Factored(list(settings.hidden))
        dp.train(model, x, y, settings.epochs, settings.lr, settings.batch_size, seed)
        key = f"composition/{name}"
        metrics[f"{key}/seen_acc"] = dp.accuracy(model, x_seen, y_seen)
        metrics[f"{key}/unseen_acc"] = dp.accuracy(model, x_new, y_new)
        model.eval()
        with torch.no_grad():
            right = model(x_new).argmax(1) == y_new
            if isinstance(model, dp.Factored):  # the digits it learned from sums alone, on the plain test digits
                guess = model.digit(digits).argmax(1)
                metrics[f"{key}/digit_acc"] = float((guess == test_labels).float().mean())
        for i, pair in enumerate(held):
            metrics[f"{key}/pair_{pair[0]}{pair[1]}_acc"] = float(right[new_index == i].float().mean())
        metrics[f"{key}/seconds"] = time.perf_counter() - started
        print(
            f"[composition] split {settings.split}, {name}: {100 * metrics[f'{key}/seen_acc']:.2f} % on the 90 seen "
            f"pairs, {100 * metrics[f'{key}/unseen_acc']:.2f} % on the 10 unseen ones "
            f"({', '.join(pair_name(p) for p in held)}); {metrics[f'{key}/seconds']:.0f} s",
            flush=True,
        )
    return metrics


def run_job(cfg: DictConfig) -> float:
    """One split of the sweep: its own MLflow run."""
    from pipeline.nn.digit_pairs import held_out_pairs
    from pipeline.stages.measurement import run_measurement

    if "composition" not in cfg:
        raise ConfigError(
            "no composition settings: run `python -m pipeline.stages.composition experiment=claim_composition`"
        )
    split = cfg.composition.split
    if isinstance(split, bool) or not isinstance(split, int) or split < 0:
        raise ConfigError(f"composition.split must be a whole number >= 0 (the held-out pairs' seed), got {split!r}.")
    s = cfg.composition
    params = {
        "composition.split": split,
        "composition.held_out": " ".join(pair_name(p) for p in held_out_pairs(split)),
        "composition.per_pair_train": s.per_pair_train,
        "composition.per_pair_test": s.per_pair_test,
        "composition.hidden": list(s.hidden),
        "composition.epochs": s.epochs,
        "data.split_seed": cfg.data.split_seed,
    }
    metrics = run_measurement(cfg, "composition", f"split{split}", params, lambda: measure(cfg))
    return metrics["composition/end_to_end/unseen_acc"]


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.composition", run_job, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
