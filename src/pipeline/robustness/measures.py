"""The robustness stage's measurements: a model and test tensors in, accuracies and scores out.

Plain arguments only (grids, names, seeds), no configuration object: the stage reads
conf/robustness/*.yaml and passes the values. Every measure seeds its own generator, so the
same model gets the same figures every run. Progress lines go to stdout as they are measured.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from pipeline.nn.calibration import expected_calibration_error

from .summary import AttackPoint

Model = torch.nn.Module


def log(msg: str) -> None:
    print(f"[robustness] {msg}", flush=True)


def accuracy_and_ece(model: Model, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    with torch.no_grad():
        probs = torch.cat([model(x[i : i + batch_size]).softmax(1) for i in range(0, len(x), batch_size)])
    return float((probs.argmax(1) == y).double().mean()), expected_calibration_error(probs.cpu(), y.cpu())


def adversarial_curves(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: Sequence[float],
    attacks: Sequence[str],
    pgd_options: Mapping[str, Any],
    batch_size: int,
    seed: int,
) -> list[AttackPoint]:
    """Accuracy at every eps (outer) for every attack (inner); `pgd_options` are pgd()'s keywords.

    The attacks' random starts draw from torch's global generators: seeded with `seed` here, and
    the caller's generator state put back afterwards, the same model gets the same figures every run."""
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _attack_every_eps(model, x, y, eps, attacks, pgd_options, batch_size)


def _attack_every_eps(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid: Sequence[float],
    attacks: Sequence[str],
    pgd_options: Mapping[str, Any],
    batch_size: int,
) -> list[AttackPoint]:
    from .attacks import accuracy_under_attack, get_attack

    points = []
    for eps in eps_grid:
        for name in attacks:
            attack = get_attack(name)
            if name == "pgd":
                attack = functools.partial(attack, **pgd_options)
            started = time.perf_counter()
            acc = accuracy_under_attack(model, x, y, functools.partial(attack, eps=float(eps)), batch_size=batch_size)
            points.append(AttackPoint(name, float(eps), acc))
            log(f"{name} eps={eps:g}: accuracy {acc:.4f} ({time.perf_counter() - started:.1f}s, {len(y)} images)")
    return points


def corruption_table(
    model: Model, x: torch.Tensor, y: torch.Tensor, corruptions: Sequence[str], batch_size: int, seed: int
) -> list[dict]:
    """Rows {corruption, accuracy, ece}: every image corrupted on the CPU with a generator seeded by `seed`."""
    from .corruptions import get_corruption

    rows = []
    for name in corruptions:
        g = torch.Generator().manual_seed(seed)
        corrupted = torch.cat(
            [get_corruption(name)(x[i : i + batch_size].cpu(), g) for i in range(0, len(x), batch_size)]
        ).to(x.device)
        acc, ece = accuracy_and_ece(model, corrupted, y, batch_size)
        rows.append({"corruption": name, "accuracy": acc, "ece": ece})
        log(f"MNIST-C {name}: accuracy {acc:.4f}, ECE {ece:.4f}")
    return rows


def official_corruption_table(
    model: Model, mnist_c_dir: str, corruptions: Sequence[str], batch_size: int, device: torch.device | str
) -> list[dict]:
    """The same table from the official MNIST-C .npy files in `mnist_c_dir` (all their images)."""
    from .mnist_c_files import load_corruption

    rows = []
    for name in corruptions:
        images, labels = load_corruption(mnist_c_dir, name)
        acc, ece = accuracy_and_ece(
            model, images.unsqueeze(1).float().div(255).to(device), labels.to(device), batch_size
        )
        rows.append({"corruption": name, "accuracy": acc, "ece": ece})
        log(f"MNIST-C {name} (official files, {len(labels)} images): accuracy {acc:.4f}, ECE {ece:.4f}")
    return rows


def severity_curves(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    grids: Mapping[str, Sequence[float]],
    batch_size: int,
    seed: int,
) -> dict[str, list[dict]]:
    """Per shift, rows {severity, accuracy, ece} over its grid."""
    from .shifts import get_severity_shift

    curves = {}
    for name, grid in grids.items():
        shift = get_severity_shift(name)
        rows = []
        for severity in grid:
            g = torch.Generator().manual_seed(seed)
            shifted = torch.cat(
                [shift(x[i : i + batch_size].cpu(), float(severity), g) for i in range(0, len(x), batch_size)]
            ).to(x.device)
            acc, ece = accuracy_and_ece(model, shifted, y, batch_size)
            rows.append({"severity": float(severity), "accuracy": acc, "ece": ece})
        curves[name] = rows
        log(f"severity {name}: " + ", ".join(f"{row['severity']:g}->{row['accuracy']:.3f}" for row in rows))
    return curves


def ood_scores(
    model: Model,
    x_in: torch.Tensor,
    fashion: torch.Tensor,
    source: str,
    noise: Sequence[str],
    batch_size: int,
    seed: int,
) -> dict[str, float]:
    """AUROC of max-softmax scores, the test images against Fashion-MNIST (uint8) and each noise kind."""
    from .ood import auroc, max_softmax_scores, noise_images, to_model_input

    scores_in = max_softmax_scores(model, x_in, batch_size)
    x_out = to_model_input(fashion).to(x_in.device)
    result = {"fashion_mnist": auroc(scores_in, max_softmax_scores(model, x_out, batch_size))}
    log(f"OOD Fashion-MNIST ({len(x_out)} images from {source}): AUROC {result['fashion_mnist']:.4f}")
    g = torch.Generator().manual_seed(seed)
    for kind in noise:
        images = noise_images(len(x_out), kind, g, device=x_in.device)
        result[f"{kind}_noise"] = auroc(scores_in, max_softmax_scores(model, images, batch_size))
        log(f"OOD {kind} noise: AUROC {result[f'{kind}_noise']:.4f}")
    return result


def autoattack_results(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: Sequence[float],
    n_images: int,
    version: str,
    seed: int,
    device: torch.device | str,
) -> dict[float, float]:
    """AutoAttack accuracy on the first `n_images` images at every eps: {eps: accuracy}."""
    from .autoattack import autoattack_accuracy

    results = {}
    n = min(n_images, len(y))
    for e in eps:
        started = time.perf_counter()
        results[float(e)] = autoattack_accuracy(model, x, y, float(e), n=n, device=device, version=version, seed=seed)
        log(
            f"AutoAttack ({version}) eps={e:g}: accuracy {results[float(e)]:.4f} "
            f"on {n} images ({time.perf_counter() - started:.0f}s)"
        )
    return results


def corruption_examples(x: torch.Tensor, corruptions: Sequence[str], seed: int) -> list[tuple[str, torch.Tensor]]:
    """One digit (1, 1, 28, 28), clean and under every corruption: [(name, 28x28 image)]."""
    from .corruptions import get_corruption

    return [("clean", x[0, 0])] + [
        (n, get_corruption(n)(x, torch.Generator().manual_seed(seed))[0, 0]) for n in corruptions
    ]


def adversarial_examples(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    n: int,
    eps: float,
    pgd_options: Mapping[str, Any],
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """The first `n` digits: clean, PGD-attacked at `eps`, labels and both predictions (on the CPU)."""
    from .attacks import pgd

    n = min(n, len(y))
    clean, labels = x[:n], y[:n]
    adv = pgd(model, clean, labels, eps, **pgd_options, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        clean_pred, adv_pred = model(clean).argmax(1), model(adv).argmax(1)
    return clean.cpu(), adv.cpu(), labels.cpu(), clean_pred.cpu(), adv_pred.cpu(), eps
