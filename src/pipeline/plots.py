"""Figures as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(confusion, path: Path, title: str = "Confusion matrix (test)") -> Path:
    plt = _pyplot()
    matrix = confusion.numpy()
    fig, ax = plt.subplots(figsize=(6, 5.2))
    image = ax.imshow(matrix, cmap="Blues")
    for (i, j), value in __import__("numpy").ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title, xticks=range(10), yticks=range(10))
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def reliability_png(rows: list[dict], ece: float, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    centers = [(r["bin_lower"] + r["bin_upper"]) / 2 for r in rows if r["count"]]
    accuracy = [r["accuracy"] for r in rows if r["count"]]
    width = rows[0]["bin_upper"] - rows[0]["bin_lower"]
    ax.bar(centers, accuracy, width=width * 0.9, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability diagram (ECE = {ece:.4f})")
    ax.legend(loc="upper left")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path
