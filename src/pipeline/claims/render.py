"""The report page: the claims as one list of typed blocks, written out as Markdown, and the HTML
page rendered from that Markdown (markdown-it-py), so the two never differ.

A page is headings plus the claims' own details (Table, Text, Image); a Figure detail
becomes the Image of the file the report drew for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.claims.model import Claim, Figure, Image, Table, Text

INTRO = (
    "Each row sets a claim beside what this project measured and the command that "
    "measured it. Every number comes from the MLflow runs of the preset sweeps "
    "(reports/results/*.json names each run id); rerun a preset and `dvc repro report` "
    "renders this page again. Training times are wall-clock seconds on the machine "
    "that ran the sweep, with whatever else it was running."
)
STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f3f3f3}"
    "code{background:#f5f5f5;padding:1px 3px}img{max-width:100%}</style>"
)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


Block = Heading | Text | Table | Image


def page(claims: list[Claim], main_metrics: dict | None, figure_paths: dict[str, Path]) -> list[Block]:
    """The report as blocks: the summary table, then one section per claim."""
    blocks: list[Block] = [Heading(1, "The textbook account of neural networks, measured"), Text(INTRO)]
    if main_metrics:
        blocks.append(
            Text(
                f"Default pipeline (`dvc repro`): {main_metrics['model']['name']} with "
                f"{main_metrics['model']['parameters']:,} parameters, test accuracy "
                f"{100 * main_metrics['test']['acc']:.2f} %."
            )
        )
    blocks.append(
        Table(
            ["#", "claim", "measured", "verdict", "published", "command"],
            [
                [
                    c.number,
                    c.text,
                    c.measured,
                    c.verdict,
                    c.published or "-",
                    f"`{c.command}`" if c.command else "(from all presets)",
                ]
                for c in claims
            ],
        )
    )
    for c in claims:
        blocks.append(Heading(2, f"{c.number}. {c.text}"))
        blocks.append(
            Text(
                f"**Measured:** {c.measured}. **Verdict:** {c.verdict}."
                + (f" **Published:** {c.published}." if c.published else "")
                + (f" **Sweep time:** {c.sweep_seconds / 60:.1f} min on this machine." if c.sweep_seconds else "")
                + (f" Reproduce: `{c.command}`." if c.command else "")
            )
        )
        for detail in c.details:
            if isinstance(detail, Figure):
                if detail.key in figure_paths:
                    blocks.append(Image(f"figures/{figure_paths[detail.key].name}", detail.caption))
            else:
                blocks.append(detail)
    return blocks


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {block.text}", ""]
        elif isinstance(block, Text):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(map(_md_cell, block.header)) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{block.caption}]({block.path})", "", f"*{block.caption}*", ""]
    return "\n".join(lines)


def to_html(markdown: str) -> str:
    """The page's Markdown as a standalone HTML page: one source, so both show the same tables and
    figures. CommonMark with GitHub's table syntax (what the Markdown is written in); raw HTML in
    the text is escaped, never passed through."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    head = '<html lang="en"><head><meta charset="utf-8">\n<title>MNIST claims report</title>'
    return f"<!doctype html>\n{head}\n{STYLE}\n</head><body>\n{body}</body></html>\n"
