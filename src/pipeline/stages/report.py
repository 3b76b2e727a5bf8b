"""Report stage: the seed's claims beside our measurements, as Markdown and HTML with figures.

    dvc repro report                                  # the DVC stage
    python -m pipeline.stages.report --params params.yaml    # the same, by hand

Reads reports/results/*.json (left by the preset sweeps, see results.py) and the
DVC pipeline's own metrics; writes reports/report.md, reports/report.html and
reports/figures/, and logs them to MLflow as one `report` run.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from omegaconf import DictConfig

from pipeline.claims import checks as claims_mod
from pipeline.common import atomic
from pipeline.common import metric_names as names
from pipeline.common.plots import _pyplot, _save


def _figure_activations(data: dict, path: Path) -> Path:
    plt = _pyplot()
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, h in data["series"].items():
        epochs = range(1, len(h[names.VAL_ACC]) + 1)
        acc_ax.plot(epochs, h[names.VAL_ACC], marker="o", label=name)
        loss_ax.plot(epochs, h[names.TRAIN_LOSS], marker="o", label=name)
    acc_ax.axhline(claims_mod.TARGET_VAL_ACC, ls="--", color="gray", lw=0.8)
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", title="Validation accuracy")
    loss_ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Training loss")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def _figure_scaling(data: dict, path: Path) -> Path:
    plt = _pyplot()
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
    return _save(fig, path)


def _figure_samples(data: dict, path: Path) -> Path:
    plt = _pyplot()
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
    return _save(fig, path)


def _figure_linear(data: dict, path: Path) -> Path:
    plt = _pyplot()
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
    return _save(fig, path)


FIGURES = {
    "activations": _figure_activations,
    "scaling": _figure_scaling,
    "samples": _figure_samples,
    "linear": _figure_linear,
}


# --- rendering: one list of blocks, two formats ------------------------------------------------


def _blocks(claims: list, main_metrics: dict | None, figure_paths: dict) -> list[tuple]:
    blocks: list[tuple] = [
        ("h1", "The textbook account of neural networks, measured"),
        (
            "p",
            "Each row sets a claim beside what this project measured and the command that "
            "measured it. Every number comes from the MLflow runs of the preset sweeps "
            "(reports/results/*.json names each run id); rerun a preset and `dvc repro report` "
            "renders this page again. Training times are wall-clock seconds on the machine "
            "that ran the sweep, with whatever else it was running.",
        ),
    ]
    if main_metrics:
        blocks.append(
            (
                "p",
                f"Default pipeline (`dvc repro`): {main_metrics['model']['name']} with "
                f"{main_metrics['model']['parameters']:,} parameters, test accuracy "
                f"{100 * main_metrics['test']['acc']:.2f} %.",
            )
        )
    blocks.append(
        (
            "table",
            ["#", "claim", "measured", "verdict", "command"],
            [
                [c.number, c.text, c.measured, c.verdict, f"`{c.command}`" if c.command else "(from all presets)"]
                for c in claims
            ],
        )
    )
    for c in claims:
        blocks.append(("h2", f"{c.number}. {c.text}"))
        blocks.append(
            (
                "p",
                f"**Measured:** {c.measured}. **Verdict:** {c.verdict}."
                + (f" Reproduce: `{c.command}`." if c.command else ""),
            )
        )
        for detail in c.details:
            if detail[0] == "table":
                blocks.append(detail)
            elif detail[0] == "text":
                blocks.append(("p", detail[1]))
            elif detail[0] == "image":
                blocks.append(("img", detail[1], detail[2]))
            elif detail[0] == "figure" and detail[1] in figure_paths:
                blocks.append(("img", f"figures/{figure_paths[detail[1]].name}", detail[2]))
    return blocks


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[tuple]) -> str:
    lines = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            lines += [f"# {block[1]}", ""]
        elif kind == "h2":
            lines += [f"## {block[1]}", ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(map(_md_cell, header)) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            lines += [f"![{block[2]}]({block[1]})", "", f"*{block[2]}*", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in HTML, everything else escaped."""
    import re

    out = html.escape(str(text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def to_html(blocks: list[tuple]) -> str:
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>MNIST claims report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f3f3f3}"
        "code{background:#f5f5f5;padding:1px 3px}img{max-width:100%}figure{margin:1em 0}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in block[1]) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{_inline(v)}</td>" for v in row) + "</tr>" for row in block[2]]
            parts.append("</table>")
        elif kind == "img":
            parts.append(
                f'<figure><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}">'
                f"<figcaption>{html.escape(block[2])}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def build(cfg: DictConfig) -> dict[str, Path]:
    out_dir = Path(cfg.report.dir)
    results = claims_mod.load_results(cfg.report.results_dir)
    run_dir = Path(cfg.run_dir)
    claims = claims_mod.all_claims(
        results, _read_json(run_dir / "robustness.json"), claims_mod.load_remedy(cfg.report.results_dir)
    )
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    figure_paths = {}
    for c in claims:
        for detail in c.details:
            if detail[0] == "figure":
                figure_paths[detail[1]] = FIGURES[detail[1]](c.data, figure_dir / f"{detail[1]}.png")
    blocks = _blocks(claims, _read_json(run_dir / "metrics.json"), figure_paths)
    written = {}
    for name, text in (("report.md", to_markdown(blocks)), ("report.html", to_html(blocks))):
        path = out_dir / name
        atomic.write_text(path, text)  # a reader never sees half a report
        written[name] = path
    for c in claims:
        print(f"[report] claim {c.number}: {c.verdict} - {c.measured}", flush=True)
    return {**written, "figures": figure_dir}


def _log_to_mlflow(cfg: DictConfig, out_dir: Path) -> str:
    from pipeline.tracking.runs import recording, start_report_run

    with recording(start_report_run(cfg), reopen=False) as run:
        run.log_artifacts(out_dir, "report")
    return run.run_id


def run(cfg: DictConfig) -> None:
    written = build(cfg)
    run_id = _log_to_mlflow(cfg, Path(cfg.report.dir))
    print(
        f"[report] wrote {written['report.md']}, {written['report.html']}, {written['figures']}/; "
        f"logged to MLflow run {run_id}",
        flush=True,
    )


def main(argv=None) -> None:
    from pipeline.stages.cli import stage_main

    stage_main("pipeline.stages.report", run, argv=argv)


if __name__ == "__main__":
    main()
