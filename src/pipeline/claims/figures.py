"""The report's figures, drawn from the data a claim measured (Claim.data), one function per Figure key."""

from __future__ import annotations

from pathlib import Path

from pipeline.claims.textbook import TARGET_VAL_ACC
from pipeline.common import metric_names as names
from pipeline.common.plots import pyplot, save_figure


def _figure_activations(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, h in data["series"].items():
        epochs = range(1, len(h[names.VAL_ACC]) + 1)
        acc_ax.plot(epochs, h[names.VAL_ACC], marker="o", label=name)
        loss_ax.plot(epochs, h[names.TRAIN_LOSS], marker="o", label=name)
    acc_ax.axhline(TARGET_VAL_ACC, ls="--", color="gray", lw=0.8)
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    loss_ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def _figure_scaling(data: dict, path: Path) -> Path:
    plt = pyplot()
    a, b, r2 = data["fit"]
    fig, (err_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    depth = [h.count(",") + 1 for h in data["hidden"]]
    for d in sorted(set(depth)):
        pick = [i for i, x in enumerate(depth) if x == d]
        label = f"{d} hidden layer{'s' if d > 1 else ''}"
        err_ax.scatter([data["params"][i] for i in pick], [data["errors"][i] for i in pick], label=label, zorder=3)
        loss_ax.scatter([data["params"][i] for i in pick], [data["losses"][i] for i in pick], label=label, zorder=3)
    xs = sorted(data["params"])
    err_ax.plot(xs, [a * x**-b for x in xs], "--", color="gray", label=f"{a:.3g}·N^-{b:.3f} (R²={r2:.2f})")
    err_ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test error", title="Test error")
    loss_ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="test loss", title="Test loss")
    for ax in (err_ax, loss_ax):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _figure_samples(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, (ns, accs) in data["curves"].items():
        ax.plot(ns, accs, marker="o", label=label)
    ax.set(
        xscale="log",
        xlabel="training examples",
        ylabel="test accuracy",
        ylim=(0, 1.0),
        title="Accuracy against training-set size",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path)


def _figure_linear(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(data["layers"], data["accs"], marker="o", label="identity activations (linear stack)")
    if data.get("relu_acc"):
        ax.axhline(data["relu_acc"], ls="--", color="C1", label="ReLU 784-128-64-10 (claim 1)")
    ax.set(
        xlabel="linear layers",
        ylabel="test accuracy",
        ylim=(0.85, 1.0),
        xticks=data["layers"],
        title="Depth does not help a linear stack",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


FIGURES = {
    "activations": _figure_activations,
    "scaling": _figure_scaling,
    "samples": _figure_samples,
    "linear": _figure_linear,
}
