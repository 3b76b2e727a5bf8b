"""Figures as PNG files (matplotlib, no display needed) and plot data as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.common import atomic


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Plot data as CSV (what `dvc plots` renders); the header comes from the first row."""
    path = Path(path)
    with atomic.replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(confusion, path: Path, title: str = "Confusion matrix (test)") -> Path:
    plt = pyplot()
    matrix = confusion.numpy()
    fig, ax = plt.subplots(figsize=(6, 5.2))
    image = ax.imshow(matrix, cmap="Blues")
    for (i, j), value in __import__("numpy").ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > matrix.max() / 2 else "black",
        )
    ax.set(xlabel="predicted", ylabel="true", title=title, xticks=range(10), yticks=range(10))
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def reliability_png(rows: list[dict], ece: float, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    centers = [(r["bin_lower"] + r["bin_upper"]) / 2 for r in rows]
    accuracy = [r["accuracy"] for r in rows]
    width = rows[0]["bin_upper"] - rows[0]["bin_lower"]
    ax.bar(centers, accuracy, width=width * 0.9, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set(
        xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=f"Reliability diagram (ECE = {ece:.4f})"
    )
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=110)
    pyplot().close(fig)
    return path


def adversarial_examples_png(clean, adv, labels, clean_pred, adv_pred, eps: float, path: Path) -> Path:
    """Rows of digits: clean, adversarial, and the perturbation that turned one into the other."""
    plt = pyplot()
    n = len(labels)
    fig, axes = plt.subplots(3, n, figsize=(1.4 * n, 4.6), squeeze=False)
    delta = adv - clean
    for i in range(n):
        for row, (image, title, cmap, vmin, vmax) in enumerate(
            [
                (clean[i, 0], f"true {int(labels[i])}\npred {int(clean_pred[i])}", "gray", 0, 1),
                (adv[i, 0], f"pred {int(adv_pred[i])}", "gray", 0, 1),
                (delta[i, 0], "perturbation", "seismic", -eps, eps),
            ]
        ):
            ax = axes[row, i]
            ax.imshow(image.numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_title(title, fontsize=8, color="red" if row == 1 and adv_pred[i] != labels[i] else "black")
            ax.axis("off")
    fig.suptitle(f"PGD, L-inf eps = {eps:g}: clean (top), adversarial (middle), perturbation (bottom)", fontsize=9)
    return save_figure(fig, path)


def curves_png(series: dict, xlabel: str, path: Path, title: str, panels: bool = False) -> Path:
    """Accuracy curves: one axis for all series, or one panel per series."""
    plt = pyplot()
    if panels:
        fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 3.2), squeeze=False)
        axes = list(axes[0])
    else:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        axes = [ax] * len(series)
    for ax, (name, (xs, ys)) in zip(axes, series.items(), strict=False):
        ax.plot(xs, ys, marker="o", label=name)
        ax.set(xlabel=f"{name} {xlabel}" if panels else xlabel, ylabel="accuracy", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    if not panels:
        axes[0].legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def corruption_examples_png(examples, path: Path) -> Path:
    """One digit under every corruption: `examples` is [(name, 28x28 image in [0, 1])], clean first."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(examples), figsize=(1.3 * len(examples), 1.8), squeeze=False)
    for ax, (name, image) in zip(axes[0], examples, strict=False):
        ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name.replace("_", " "), fontsize=7)
        ax.axis("off")
    return save_figure(fig, path)


def _mosaic(tiles, cols: int, gap: int = 1):
    """Tiles (n, h, w) as one array, `cols` per row, `gap` pixels of NaN between them (drawn blank).

    One image drawn once is about ten times cheaper than a grid of subplots, which
    matters because every training run draws these figures."""
    import numpy as np

    n, h, w = tiles.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return out


def _blank_nan(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")


def filters_png(weights, path: Path, title: str) -> Path:
    """A grid of weight images on a symmetric red-blue scale (each scaled to its own range)."""
    plt = pyplot()
    n = len(weights)
    cols = min(n, 16)
    rows = -(-n // cols)
    limits = weights.abs().flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    fig, ax = plt.subplots(figsize=(cols * 0.75, rows * 0.75 + 0.5))
    ax.imshow(
        _mosaic((weights / limits).numpy(), cols), cmap=_blank_nan("seismic"), vmin=-1, vmax=1, interpolation="nearest"
    )
    ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def top_images_png(images, units: list[int], picks, path: Path, title: str) -> Path:
    """One row per unit: the images (uint8, N x 28 x 28) that excite it most."""
    plt = pyplot()
    rows, cols = picks.shape
    tiles = images[picks.flatten().long()].float().numpy()
    height = images.shape[1]
    fig, ax = plt.subplots(figsize=(cols * 0.8 + 0.6, rows * 0.8 + 0.4))
    ax.imshow(_mosaic(tiles, cols, gap=2), cmap=_blank_nan("gray"), vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * (height + 2) + height / 2 for r in range(rows)], [f"unit {u}" for u in units], fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
