"""Robustness stage: adversarial attacks, MNIST-C corruptions, severity sweeps, out-of-distribution inputs.

    python -m pipeline.stages.robustness --params params.yaml                 # the DVC stage
    python -m pipeline.stages.robustness run_dir=outputs/runs/<a run>         # any trained run
    python -m pipeline.stages.robustness run_dir=... robustness=quick         # small subsets

Reads <run_dir>/run.json and the best checkpoint. Writes <run_dir>/robustness.json
(DVC metrics), curves under <run_dir>/plots/robustness/ (DVC plots), figures under
<run_dir>/figures/robustness/, and logs everything into the model's MLflow run.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _log(msg: str) -> None:
    print(f"[robustness] {msg}", flush=True)


def _accuracy_and_ece(model, x, y, batch_size: int) -> tuple[float, float]:
    import torch

    from pipeline.nn.calibration import expected_calibration_error

    with torch.no_grad():
        probs = torch.cat([model(x[i : i + batch_size]).softmax(1) for i in range(0, len(x), batch_size)])
    return float((probs.argmax(1) == y).double().mean()), expected_calibration_error(probs.cpu(), y.cpu())


def adversarial_curves(model, x, y, r: DictConfig, seed: int) -> list[dict]:
    """Accuracy at every eps for every attack: rows {eps, fgsm, pgd}.

    The attacks' random starts draw from torch's global generators: seeded with `seed` here, and
    the caller's generator state put back afterwards, the same model gets the same figures every run."""
    import torch

    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _attack_every_eps(model, x, y, r)


def _attack_every_eps(model, x, y, r: DictConfig) -> list[dict]:
    from pipeline.robustness.attacks import accuracy_under_attack, get_attack

    rows = []
    for eps in r.eps:
        row = {"eps": float(eps)}
        for name in r.attacks:
            attack = get_attack(name)
            if name == "pgd":
                attack = functools.partial(
                    attack,
                    steps=r.pgd.steps,
                    step_size=r.pgd.step_size,
                    random_start=r.pgd.random_start,
                    restarts=r.pgd.restarts,
                )
            started = time.perf_counter()
            row[name] = accuracy_under_attack(
                model, x, y, functools.partial(attack, eps=float(eps)), batch_size=r.batch_size
            )
            _log(
                f"{name} eps={eps:g}: accuracy {row[name]:.4f} ({time.perf_counter() - started:.1f}s, {len(y)} images)"
            )
        rows.append(row)
    return rows


def corruption_table(model, x, y, r: DictConfig, generator_seed: int) -> list[dict]:
    import torch

    from pipeline.robustness.corruptions import get_corruption

    if r.get("mnist_c_dir"):
        return official_corruption_table(model, r, x.device)
    rows = []
    for name in r.corruptions:
        g = torch.Generator().manual_seed(generator_seed)
        corrupted = torch.cat(
            [get_corruption(name)(x[i : i + r.batch_size].cpu(), g) for i in range(0, len(x), r.batch_size)]
        ).to(x.device)
        acc, ece = _accuracy_and_ece(model, corrupted, y, r.batch_size)
        rows.append({"corruption": name, "accuracy": acc, "ece": ece})
        _log(f"MNIST-C {name}: accuracy {acc:.4f}, ECE {ece:.4f}")
    return rows


def official_corruption_table(model, r: DictConfig, device) -> list[dict]:
    """The same table from the official MNIST-C .npy files in robustness.mnist_c_dir (all their images)."""
    from pipeline.robustness.mnist_c_files import load_corruption

    rows = []
    for name in r.corruptions:
        images, labels = load_corruption(r.mnist_c_dir, name)
        acc, ece = _accuracy_and_ece(
            model, images.unsqueeze(1).float().div(255).to(device), labels.to(device), r.batch_size
        )
        rows.append({"corruption": name, "accuracy": acc, "ece": ece})
        _log(f"MNIST-C {name} (official files, {len(labels)} images): accuracy {acc:.4f}, ECE {ece:.4f}")
    return rows


def severity_curves(model, x, y, r: DictConfig, generator_seed: int) -> dict[str, list[dict]]:
    import torch

    from pipeline.robustness.corruptions import get_severity_shift

    curves = {}
    for name, grid in r.severity.items():
        shift = get_severity_shift(name)
        rows = []
        for severity in grid:
            g = torch.Generator().manual_seed(generator_seed)
            shifted = torch.cat(
                [shift(x[i : i + r.batch_size].cpu(), float(severity), g) for i in range(0, len(x), r.batch_size)]
            ).to(x.device)
            acc, ece = _accuracy_and_ece(model, shifted, y, r.batch_size)
            rows.append({"severity": float(severity), "accuracy": acc, "ece": ece})
        curves[name] = rows
        _log(f"severity {name}: " + ", ".join(f"{row['severity']:g}->{row['accuracy']:.3f}" for row in rows))
    return curves


def load_fashion(r: DictConfig):
    """The published Fashion-MNIST test images, from a given folder, Debian's package or torchvision's
    download; anything else is refused (exit status 2) before any output is written."""
    from pipeline.robustness.ood import FASHION_TEST_IMAGES_SHA256, is_published_fashion_test

    images, source = _find_fashion(r)
    if not is_published_fashion_test(images):
        print(
            f"error: the Fashion-MNIST test images from {source} are not the published ones (sha256 of the "
            f"uint8 array should be {FASHION_TEST_IMAGES_SHA256}): OOD results would not be comparable. Point "
            "robustness.ood.fashion_dir at the official t10k files or install Debian's dataset-fashion-mnist.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return images, source


def _find_fashion(r: DictConfig):
    from pipeline.robustness.ood import DEBIAN_FASHION_MNIST_DIR, load_fashion_mnist_test

    if r.ood.fashion_dir:
        return load_fashion_mnist_test(r.ood.fashion_dir), f"folder {r.ood.fashion_dir}"
    if DEBIAN_FASHION_MNIST_DIR.is_dir():
        return load_fashion_mnist_test(), f"Debian package ({DEBIAN_FASHION_MNIST_DIR})"
    try:
        from torchvision.datasets import FashionMNIST

        return FashionMNIST("data/fashion-mnist", train=False, download=True).data, "torchvision mirrors"
    except Exception as err:
        raise RuntimeError(
            "Fashion-MNIST is needed for the out-of-distribution test and was not found: "
            f"torchvision's mirrors failed ({err}). Install Debian's package "
            "(`apt-get install dataset-fashion-mnist`) or set robustness.ood.fashion_dir=<folder of IDX files>."
        ) from err


def ood_scores(model, x_in, r: DictConfig, generator_seed: int) -> dict[str, float]:
    import torch

    from pipeline.robustness.ood import auroc, max_softmax_scores, noise_images, to_model_input

    scores_in = max_softmax_scores(model, x_in, r.batch_size)
    fashion, source = load_fashion(r)
    if r.ood.n_images:
        fashion = fashion[: r.ood.n_images]
    x_out = to_model_input(fashion).to(x_in.device)
    result = {"fashion_mnist": auroc(scores_in, max_softmax_scores(model, x_out, r.batch_size))}
    _log(f"OOD Fashion-MNIST ({len(x_out)} images from {source}): AUROC {result['fashion_mnist']:.4f}")
    g = torch.Generator().manual_seed(generator_seed)
    for kind in r.ood.noise:
        noise = noise_images(len(x_out), kind, g, device=x_in.device)
        result[f"{kind}_noise"] = auroc(scores_in, max_softmax_scores(model, noise, r.batch_size))
        _log(f"OOD {kind} noise: AUROC {result[f'{kind}_noise']:.4f}")
    return result


def autoattack_results(model, x, y, r: DictConfig, device) -> dict[str, float]:
    from pipeline.robustness.autoattack import autoattack_accuracy

    results = {}
    n = min(r.autoattack.n_images, len(y))
    for eps in r.autoattack.eps:
        started = time.perf_counter()
        results[f"{float(eps):g}"] = autoattack_accuracy(
            model, x, y, float(eps), n=n, device=device, version=r.autoattack.version, seed=r.seed
        )
        _log(
            f"AutoAttack ({r.autoattack.version}) eps={eps:g}: accuracy {results[f'{float(eps):g}']:.4f} "
            f"on {n} images ({time.perf_counter() - started:.0f}s)"
        )
    return results


def evaluate_robustness(cfg: DictConfig) -> dict:
    """The robustness stage: compute every measurement, then record them (files and the MLflow run)."""
    from pipeline.tracking import run_ref

    ref = run_ref.read(cfg.run_dir)
    measured = compute(cfg, ref)
    record(cfg, run_ref.run_of(ref), measured)
    return measured.result


@dataclass
class Robustness:
    """What the robustness stage measured: robustness.json's content and the curves and examples behind it."""

    result: dict
    curves: list[dict]
    corruptions: list[dict]
    severity: dict[str, list[dict]]
    adversarial_examples: tuple[Any, Any, Any, Any, Any, float] = field(repr=False)
    corruption_examples: list = field(repr=False)


def compute(cfg: DictConfig, ref: dict) -> Robustness:
    import torch

    from pipeline.data.mnist import load_split
    from pipeline.nn.builders import load_checkpoint
    from pipeline.nn.images import to_model_input
    from pipeline.tracking.run_ref import best_checkpoint

    r = cfg.robustness
    run_dir = Path(cfg.run_dir)
    device = _device(r.device)
    model = load_checkpoint(best_checkpoint(run_dir, ref)).to(device)
    images, labels = load_split(cfg.data.root, "test")
    if r.n_images:
        # A fixed, seeded subset, the same for every model, so results compare.
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(r.seed))[: r.n_images]
        images, labels = images[pick], labels[pick]
    x = to_model_input(images).to(device)
    y = labels.to(device)
    _log(f"profile {r.profile}: {len(y)} test images on {device}")

    clean_acc, clean_ece = _accuracy_and_ece(model, x, y, r.batch_size)
    curves = adversarial_curves(model, x, y, r, r.seed)
    auto = autoattack_results(model, x, y, r, device) if r.autoattack.n_images else {}
    corruptions = corruption_table(model, x, y, r, r.seed)
    severity = severity_curves(model, x, y, r, r.seed)
    ood = ood_scores(model, x, r, r.seed)

    def at(attack: str, eps: float):
        return next((row[attack] for row in curves if math.isclose(row["eps"], eps) and attack in row), None)

    worst = min(corruptions, key=lambda row: row["accuracy"])
    result = {
        "profile": r.profile,
        "images": len(y),
        "clean": {"acc": clean_acc, "ece": clean_ece},
        "adversarial": {
            f"{attack}_eps{eps:g}": at(attack, eps)
            for attack in r.attacks
            for eps in (0.1, 0.3)
            if at(attack, eps) is not None
        },
        "autoattack": {f"eps{eps}": acc for eps, acc in auto.items()},
        "mnist_c": {
            "mean_acc": sum(row["accuracy"] for row in corruptions) / len(corruptions),
            "worst": worst["corruption"],
            "worst_acc": worst["accuracy"],
            "mean_ece": sum(row["ece"] for row in corruptions) / len(corruptions),
            "acc": {row["corruption"]: row["accuracy"] for row in corruptions},
            "ece": {row["corruption"]: row["ece"] for row in corruptions},
        },
        "ood_auroc": ood,
    }
    return Robustness(
        result,
        curves,
        corruptions,
        severity,
        _adversarial_examples(model, x, y, r),
        _corruption_examples(x[:1].cpu(), r.corruptions, r.seed),
    )


def mlflow_metrics(m: Robustness) -> dict[str, float]:
    """robustness.json as the flat names the MLflow run carries (see metric_names.py)."""
    from pipeline.common import metric_names as names

    result = m.result
    flat = {
        names.ROBUST_CLEAN_ACC: result["clean"]["acc"],
        names.SHIFT_CLEAN_ECE: result["clean"]["ece"],
        names.MNIST_C_MEAN_ACC: result["mnist_c"]["mean_acc"],
        names.MNIST_C_WORST_ACC: result["mnist_c"]["worst_acc"],
        names.MNIST_C_MEAN_ECE: result["mnist_c"]["mean_ece"],
    }
    flat.update({names.attack_acc(*_attack_and_eps(k)): v for k, v in result["adversarial"].items()})
    flat.update({names.autoattack_acc(float(k[len("eps") :])): v for k, v in result["autoattack"].items()})
    flat.update({names.corruption_acc(row["corruption"]): row["accuracy"] for row in m.corruptions})
    flat.update({names.corruption_ece(row["corruption"]): row["ece"] for row in m.corruptions})
    flat.update({names.ood_auroc(k): v for k, v in result["ood_auroc"].items()})
    return flat


def _attack_and_eps(key: str) -> tuple[str, float]:
    """robustness.json's "pgd_eps0.1" -> ("pgd", 0.1)."""
    attack, eps = key.rsplit("_eps", 1)
    return attack, float(eps)


def record(cfg: DictConfig, run, m: Robustness) -> None:
    """Write robustness.json, the curves and figures, and log the same numbers into the model's run."""
    from pipeline.common import atomic, plots
    from pipeline.common import metric_names as names
    from pipeline.tracking.runs import recording

    r = cfg.robustness
    run_dir = Path(cfg.run_dir)
    result, curves, severity = m.result, m.curves, m.severity
    out_json = run_dir / "robustness.json"
    atomic.write_json(out_json, result)
    plot_dir, fig_dir = run_dir / "plots" / "robustness", run_dir / "figures" / "robustness"
    files = [
        plots.write_csv(plot_dir / "adversarial.csv", curves),
        plots.write_csv(plot_dir / "corruptions.csv", m.corruptions),
    ]
    files += [plots.write_csv(plot_dir / "severity" / f"{name}.csv", rows) for name, rows in severity.items()]
    files += [
        plots.adversarial_examples_png(*m.adversarial_examples, fig_dir / "adversarial_examples.png"),
        plots.curves_png(
            {a: ([row["eps"] for row in curves], [row[a] for row in curves]) for a in r.attacks},
            "eps (L-inf, pixel scale)",
            fig_dir / "accuracy_vs_eps.png",
            "Accuracy under attack",
        ),
        plots.curves_png(
            {n: ([row["severity"] for row in rows], [row["accuracy"] for row in rows]) for n, rows in severity.items()},
            "severity",
            fig_dir / "accuracy_vs_severity.png",
            "Accuracy under distribution shift",
            panels=True,
        ),
        plots.corruption_examples_png(m.corruption_examples, fig_dir / "corruptions.png"),
    ]

    with recording(run):
        run.log_metrics(mlflow_metrics(m))
        for attack in r.attacks:  # the curve as a chart in the UI: step = eps x 100
            for row in curves:
                run.log_metrics({names.attack_curve(attack): row[attack]}, step=round(row["eps"] * 100))
        run.set_tags({"robustness.profile": r.profile, "shift.worst_corruption": result["mnist_c"]["worst"]})
        run.log_artifact(out_json, "robustness")
        for path in files:
            run.log_artifact(path, "robustness")
    auto, ood, mc = result["autoattack"], result["ood_auroc"], result["mnist_c"]
    _log(
        f"clean {result['clean']['acc']:.4f} | "
        + " ".join(f"{k} {v:.4f}" for k, v in result["adversarial"].items())
        + (" | AutoAttack " + " ".join(f"{k} {v:.4f}" for k, v in auto.items()) if auto else "")
        + f" | MNIST-C mean {mc['mean_acc']:.4f}, worst {mc['worst']} "
        f"{mc['worst_acc']:.4f} | Fashion-MNIST AUROC {ood['fashion_mnist']:.4f}"
    )
    _log(f"wrote {out_json}, {plot_dir}/, {fig_dir}/; logged to MLflow run {run.run_id}")


def _corruption_examples(x, names, seed: int) -> list:
    """One digit (1, 1, 28, 28), clean and under every corruption: [(name, 28x28 image)]."""
    import torch

    from pipeline.robustness.corruptions import get_corruption

    return [("clean", x[0, 0])] + [(n, get_corruption(n)(x, torch.Generator().manual_seed(seed))[0, 0]) for n in names]


def _adversarial_examples(model, x, y, r: DictConfig):
    """A few digits: clean, PGD-attacked at the largest eps, and the perturbation."""
    import torch

    from pipeline.robustness.attacks import pgd

    n, eps = min(r.examples, len(y)), float(max(r.eps))
    clean, labels = x[:n], y[:n]
    adv = pgd(
        model,
        clean,
        labels,
        eps,
        steps=r.pgd.steps,
        step_size=r.pgd.step_size,
        random_start=r.pgd.random_start,
        generator=torch.Generator().manual_seed(r.seed),
    )
    with torch.no_grad():
        clean_pred, adv_pred = model(clean).argmax(1), model(adv).argmax(1)
    return clean.cpu(), adv.cpu(), labels.cpu(), clean_pred.cpu(), adv_pred.cpu(), eps


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.robustness", evaluate_robustness, argv=argv)


if __name__ == "__main__":
    main()
