"""Perturbation stage: how small a change fools a trained model, image by image (claim 15)?

    python -m pipeline.stages.perturbation experiment=claim_perturbation              # MLP, CNN, robust model
    python -m pipeline.stages.perturbation experiment=claim_perturbation perturbation.model=cnn hydra.mode=RUN
    python -m pipeline.stages.perturbation experiment=claim_perturbation \\
        perturbation.models.cnn=outputs/runs/<run>/checkpoints/best.ckpt           # a checkpoint instead

It measures models already trained and registered, it trains none: `models:/mnist-mlp@champion`,
`models:/mnist-cnn@champion` and `models:/mnist-robust@champion` by default (a missing one is named,
with the command that trains it). One job per model, each its own MLflow run: on the first
`perturbation.images` test images, DeepFool's smallest L2 and L-inf changes that flip the label
(robustness/minimal.py), and PGD-40 over a grid of L-inf radii as a second, stronger upper bound.
The run's artifacts hold a few originals beside their adversarial images (the report's grid) and
the distribution of the sizes found.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from pipeline.common import atomic
from pipeline.config.settings import ConfigError

ARTIFACTS = "perturbation"
EXAMPLES = "examples.json"
# How each default model is trained and registered, for the message when it is missing.
TRAIN = {
    "mlp": "python -m pipeline.stages.train tracking.register=true",
    "cnn": "python -m pipeline.stages.train experiment=cnn tracking.register=true",
    "robust": "python -m pipeline.stages.train +experiment=robust_pgd tracking.register=true",
}


def load_target(cfg: DictConfig):
    """The model this job measures, with where it came from (its URI and, for an alias, the version)."""
    from pipeline.tracking.client import resolve_uri

    name, source = cfg.perturbation.model, str(cfg.perturbation.models[cfg.perturbation.model])
    if source.endswith(".ckpt"):
        from pipeline.nn.builders import load_checkpoint

        if not Path(source).is_file():
            raise ConfigError(f"perturbation.models.{name}: no checkpoint at {source}.")
        return load_checkpoint(source), {"perturbation.source": source}
    from pipeline.tracking.registry import load_model, model_aliases

    uri = resolve_uri(cfg.tracking.uri)
    try:
        model = load_model(source, uri)
    except Exception as err:
        how = f"`{TRAIN[name]}`" if name in TRAIN else "training it with tracking.register=true"
        raise ConfigError(
            f"perturbation.models.{name} = {source} could not be loaded from {uri} "
            f"({str(err).splitlines()[0] if str(err) else type(err).__name__}). Train and register it first with "
            f"{how}, or point perturbation.models.{name} at another model URI or a .ckpt file."
        ) from None
    info = {"perturbation.source": source}
    if source.startswith("models:/") and "@" in source:
        registered, alias = source.removeprefix("models:/").split("@", 1)
        version = (model_aliases(uri, registered) or {}).get(alias)
        if version is not None:
            info["perturbation.model_version"] = str(version)
    return model, info


def _hex(image) -> str:
    """A [0, 1] image as 784 bytes in hex: small in the results file, exact enough to draw."""
    import torch

    return bytes(image.mul(255).round().clamp(0, 255).to(torch.uint8).flatten().tolist()).hex()


def _percentiles(values) -> list[float | None]:
    """The 0th..100th percentiles of per-image sizes (None where no attack flipped that share)."""
    import torch

    q = torch.quantile(values.double(), torch.linspace(0, 1, 101, dtype=torch.float64))
    return [None if not torch.isfinite(v) else round(float(v), 4) for v in q]


def _prediction(model, image) -> int:
    import torch

    with torch.no_grad():
        return int(model(image[None]).argmax(1))


def _smallest_linf(model, image, label, deepfool_image, deepfool_size, radius, steps: int):
    """An example's smallest L-inf adversarial image: DeepFool's, or PGD's at the image's grid radius
    when that is smaller and PGD (from a new random start) flips the image again."""
    from pipeline.robustness.attacks import pgd

    if not radius < deepfool_size:
        return deepfool_image
    again = pgd(model, image[None], label[None], float(radius), steps=steps)[0]
    return again if _prediction(model, again) != int(label) else deepfool_image


def measure(cfg: DictConfig, model, out: Path) -> dict[str, float]:
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.robustness.attacks import pgd
    from pipeline.robustness.minimal import deepfool, pgd_radius

    s = cfg.perturbation
    torch.manual_seed(cfg.seed)
    images, labels = load_split(cfg.data.root, "test")
    x, y = images[: s.images].unsqueeze(1).float().div(255), labels[: s.images]
    with torch.no_grad():
        correct = model.eval()(x).argmax(1) == y
    key = "perturbation"
    metrics: dict[str, float] = {f"{key}/clean_acc": float(correct.float().mean())}
    found = {}
    for norm in ("l2", "linf"):
        started = time.perf_counter()
        found[norm] = deepfool(model, x, y, norm, s.overshoot, s.max_iter, s.batch_size)
        metrics[f"{key}/deepfool_{norm}/seconds"] = time.perf_counter() - started
        metrics[f"{key}/deepfool_{norm}/fooled"] = float(found[norm].fooled[correct].float().mean())
        metrics[f"{key}/deepfool_{norm}/iterations"] = found[norm].iterations
    started = time.perf_counter()
    radius = pgd_radius(model, x, y, list(s.radii), s.pgd_steps, s.batch_size, cfg.seed)
    metrics[f"{key}/pgd/seconds"] = time.perf_counter() - started
    # Each size is an upper bound on the image's true minimal change: the smaller of the two is kept.
    sizes = {
        "l2": found["l2"].l2[correct],
        "linf_deepfool": found["linf"].linf[correct],
        "linf_pgd": radius[correct],
    }
    sizes["linf"] = torch.minimum(sizes["linf_deepfool"], sizes["linf_pgd"])
    for name, v in sizes.items():
        metrics[f"{key}/{name}/median"] = float(v.median())
    metrics[f"{key}/linf/within_eps"] = float((sizes["linf"] <= s.eps).float().mean())
    metrics[f"{key}/linf/within_visible_eps"] = float((sizes["linf"] <= s.visible_eps).float().mean())

    # A few originals beside their adversarial images: the first images the model gets right.
    picks = correct.nonzero().squeeze(1)[: s.examples]
    visible = pgd(model, x[picks], y[picks], s.visible_eps, steps=s.pgd_steps)
    examples = []
    for n, i in enumerate(picks.tolist()):
        linf = _smallest_linf(
            model, x[i], y[i], found["linf"].adversarial[i], found["linf"].linf[i], radius[i], s.pgd_steps
        )
        adv = {"l2": found["l2"].adversarial[i], "linf": linf, "visible": visible[n]}
        examples.append(
            {
                "index": i,
                "label": int(y[i]),
                "original": _hex(x[i]),
                **{
                    k: {
                        "image": _hex(a),
                        "prediction": _prediction(model, a),
                        "l2": round(float((a - x[i]).norm()), 4),
                        "linf": round(float((a - x[i]).abs().max()), 4),
                    }
                    for k, a in adv.items()
                },
            }
        )
    folder = out / ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "model": cfg.perturbation.model,
        "images": int(correct.sum()),
        "percentiles": {name: _percentiles(v) for name, v in sizes.items()},
        "examples": examples,
    }
    atomic.write_text(folder / EXAMPLES, json.dumps(data) + "\n")
    print(
        f"[perturbation] {cfg.perturbation.model}: {100 * metrics[f'{key}/clean_acc']:.1f} % clean on {len(x)} images; "
        f"median smallest change L2 {metrics[f'{key}/l2/median']:.3f}, L-inf {metrics[f'{key}/linf/median']:.3f}; "
        f"{100 * metrics[f'{key}/linf/within_eps']:.1f} % fooled within L-inf {s.eps}",
        flush=True,
    )
    return metrics


def run_job(cfg: DictConfig) -> float:
    """One model of the sweep: its own MLflow run."""
    from pipeline.stages.measurement import run_measurement

    if "perturbation" not in cfg:
        raise ConfigError(
            "no perturbation settings: run `python -m pipeline.stages.perturbation experiment=claim_perturbation`"
        )
    s = cfg.perturbation
    if s.model not in s.models:
        raise ConfigError(
            f"perturbation.model={s.model!r} is not one of perturbation.models ({', '.join(s.models)}); "
            "choose one, or add it: +perturbation.models.<name>=<model URI or .ckpt>."
        )
    if isinstance(s.images, bool) or not isinstance(s.images, int) or not 1 <= s.images <= 10_000:
        raise ConfigError(f"perturbation.images must be a whole number from 1 to 10000, got {s.images!r}.")
    for name in ("eps", "visible_eps"):
        if s[name] not in s.radii:
            raise ConfigError(
                f"perturbation.{name}={s[name]} is not among perturbation.radii {list(s.radii)}: "
                "PGD must try that radius; add it to the list."
            )
    model, source = load_target(cfg)
    params = {
        "perturbation.model": s.model,
        **source,
        "perturbation.images": s.images,
        "perturbation.overshoot": s.overshoot,
        "perturbation.max_iter": s.max_iter,
        "perturbation.radii": list(s.radii),
        "perturbation.pgd_steps": s.pgd_steps,
        "perturbation.eps": s.eps,
        "perturbation.visible_eps": s.visible_eps,
    }
    out = Path(cfg.run_dir)
    metrics = run_measurement(
        cfg, "perturbation", s.model, params, lambda: measure(cfg, model, out), artifact_dir=ARTIFACTS
    )
    return metrics["perturbation/linf/median"]


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.perturbation", run_job, fresh_run_dir=True, argv=argv)


if __name__ == "__main__":
    main()
