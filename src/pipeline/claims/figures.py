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


def _figure_mechanics(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    forward, backward = data["forward_ms"] / 1000, data["backward_ms"] / 1000
    bars = {
        "forward pass": forward,
        "forward + backward\n(the gradient)": forward + backward,
        f"finite differences\n({data['passes']:,} forward passes,\nestimated)": data["finite_difference_s"],
    }
    ax.bar(list(bars), list(bars.values()), color=["C0", "C2", "C3"])
    for i, seconds in enumerate(bars.values()):
        ax.annotate(f"{seconds:.3g} s", (i, seconds), ha="center", va="bottom", fontsize=8)
    ax.set(yscale="log", ylabel="seconds (log scale)", title="One gradient of the loss on 256 images")
    ax.grid(alpha=0.3, axis="y", which="both")
    return save_figure(fig, path)


def _figure_baselines(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, error, seconds in data["points"]:
        ax.scatter(seconds, error, color="C0", zorder=3)
        ax.annotate(label, (seconds, error), textcoords="offset points", xytext=(5, 4), fontsize=7)
    for i, (key, ((mean, std), seconds)) in enumerate(data["networks"].items()):
        ax.errorbar(seconds, mean, yerr=std, fmt="s", color=f"C{i + 1}", capsize=3, zorder=3)
        ax.annotate(key.upper(), (seconds, mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="training time on this CPU (s)",
        ylabel="test error",
        title="Classical methods (circles), networks (squares: mean ± std over seeds)",
    )
    ax.title.set_fontsize(10)
    ax.margins(x=0.25)  # room for the labels right of the last points
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


def _figure_loss_curve(data: dict, path: Path) -> Path:
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(1, len(data["series"]), figsize=(4.6 * len(data["series"]), 3.6), squeeze=False)
    for ax, (label, (steps, losses, log, power)) in zip(axes[0], data["series"].items(), strict=True):
        t = np.asarray(steps, float)
        ax.plot(t, losses, ".", ms=3, color="gray", label="loss (10-step mean)")
        ax.plot(t, log["a"] - log["b"] * np.log(t), label=f"a - b ln t (R² {log['r2']:.2f})")
        ax.plot(t, power["c"] + power["A"] * t ** -power["alpha"], "--", label=f"c + A t^-alpha (R² {power['r2']:.2f})")
        ax.set(xscale="log", xlabel="training step", ylabel="training loss", title=label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _figure_depth(data: dict, path: Path) -> Path:
    plt = pyplot()
    saw, regions = data["sawtooth"], data["regions"]
    fig, axes = plt.subplots(1, 2 if regions else 1, figsize=(9 if regions else 4.8, 3.6), squeeze=False)
    ax = axes[0][0]
    found = [(k, w) for k, w in zip(saw["ks"], saw["widths"], strict=True) if w]
    ax.plot([k for k, _ in found], [w for _, w in found], "o-", label="one hidden layer: smallest width")
    ax.plot(saw["ks"], [2**k for k in saw["ks"]], ":", color="gray", label="2^k (pieces)")
    ax.plot(saw["ks"], [2 * k for k in saw["ks"]], "s-", label="k layers of 2: neurons")
    ax.set(yscale="log", xlabel="k (tent map composed k times)", ylabel="neurons", title="Sawtooth, RMSE target")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    if regions:
        ax = axes[0][1]
        depths = [r["depth"] for r in regions]
        ax.plot(depths, [r["init"] for r in regions], "o-", label="at initialisation")
        ax.plot(depths, [r["trained"] for r in regions], "s-", label="after training")
        ax.plot(depths, [10 ** r["log10_max_regions"] for r in regions], ":", color="gray", label="most possible")
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="hidden layers (same neurons in all)",
            ylabel="linear regions on a segment",
            title="MNIST MLPs",
        )
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _figure_techniques(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, norms in data["gradients"].items():
        left.plot(range(1, len(norms) + 1), norms, "o-" if "BN" in label else "s--", label=label)
    left.set(
        yscale="log", xlabel="linear layer (last = output)", ylabel="weight-gradient norm", title="At initialisation"
    )
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=7)
    for label, accs in data["curves"].items():
        right.plot(range(1, len(accs) + 1), accs, "o-", label=label)
    right.axhline(data["target"], color="gray", linestyle=":", label="target")
    right.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1), title="Plain SGD, no dropout")
    right.grid(alpha=0.3)
    right.legend(fontsize=6)
    return save_figure(fig, path)


def _figure_composition(data: dict, path: Path) -> Path:
    plt = pyplot()
    splits = data["splits"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = (
        ("end_to_end", "seen_acc", "end-to-end, 90 seen pairs"),
        ("end_to_end", "unseen_acc", "end-to-end, 10 unseen pairs"),
        ("factored", "seen_acc", "factored, seen pairs"),
        ("factored", "unseen_acc", "factored, unseen pairs"),
    )
    for n, (model, key, label) in enumerate(bars):
        ax.bar([i + (n - 1.5) * 0.2 for i in range(len(splits))], [s[model][key] for s in splits], 0.2, label=label)
    ax.set_xticks(range(len(splits)), [f"split {s['split']}" for s in splits])
    ax.set(ylabel="accuracy on the sum", ylim=(0, 1.3), title="Sums of two digits: 10 of the 100 pairs held out")
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    return save_figure(fig, path)


def _figure_perturbation(data: dict, path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    share = [p / 100 for p in range(101)]
    for ax, size, label in ((axes[0], "linf", "L-inf"), (axes[1], "l2", "L2")):
        for m in data["models"]:
            values = m["artifact"].get("percentiles", {}).get(size, [])
            points = [(v, q) for v, q in zip(values, share, strict=False) if v is not None]
            if points:
                ax.plot([v for v, _ in points], [q for _, q in points], label=m["model"])
        ax.set(xlabel=f"{label} size of the change (pixels in [0, 1])", ylabel="share of images fooled", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for eps, style in ((data["eps"], "--"), (data["visible_eps"], ":")):
        axes[0].axvline(eps, color="gray", linestyle=style)
    axes[0].set(title="Smallest L-inf change (DeepFool or PGD)")
    axes[1].set(title="Smallest L2 change (DeepFool)")
    return save_figure(fig, path)


def _image(hex_pixels: str):
    """784 hex-coded bytes back to a 28x28 array in [0, 1]."""
    import numpy as np

    return np.frombuffer(bytes.fromhex(hex_pixels), dtype=np.uint8).reshape(28, 28) / 255.0


def _figure_perturbation_examples(data: dict, path: Path) -> Path:
    plt = pyplot()
    rows = [(m["model"], e) for m in data["models"] for e in m["artifact"].get("examples", [])]
    columns = ("original", "L2 change", "L2 adversarial", "L-inf adversarial", f"PGD at {data['visible_eps']:g}")
    fig, axes = plt.subplots(max(len(rows), 1), len(columns), figsize=(1.7 * len(columns), 1.75 * max(len(rows), 1)))
    axes = axes.reshape(max(len(rows), 1), len(columns))
    for r, (model, e) in enumerate(rows):
        original = _image(e["original"])
        change = _image(e["l2"]["image"]) - original
        scale = max(abs(change).max(), 1e-6)
        panels = (
            (original, "gray", (0, 1), f"{model}: {e['label']}"),
            (change, "seismic", (-scale, scale), f"±{scale:.2f}"),
            (_image(e["l2"]["image"]), "gray", (0, 1), f"→ {e['l2']['prediction']}, L2 {e['l2']['l2']:.2f}"),
            (_image(e["linf"]["image"]), "gray", (0, 1), f"→ {e['linf']['prediction']}, L∞ {e['linf']['linf']:.2f}"),
            (_image(e["visible"]["image"]), "gray", (0, 1), f"→ {e['visible']['prediction']}"),
        )
        for c, (img, cmap, (lo, hi), title) in enumerate(panels):
            axes[r, c].imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            axes[r, c].set_title(title, fontsize=7)
    for c, name in enumerate(columns):
        axes[0, c].text(0.5, 1.35, name, transform=axes[0, c].transAxes, ha="center", fontsize=8, weight="bold")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


FIGURES = {
    "perturbation": _figure_perturbation,
    "perturbation_examples": _figure_perturbation_examples,
    "composition": _figure_composition,
    "techniques": _figure_techniques,
    "depth": _figure_depth,
    "loss_curve": _figure_loss_curve,
    "baselines": _figure_baselines,
    "mechanics": _figure_mechanics,
    "activations": _figure_activations,
    "scaling": _figure_scaling,
    "samples": _figure_samples,
    "linear": _figure_linear,
}
