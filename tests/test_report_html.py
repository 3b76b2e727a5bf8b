"""The report's HTML is rendered from its Markdown (markdown-it-py, CommonMark + tables): both show
the same tables, cell for cell, and the same figures. Checked on the report the committed sweep
results render, and on hostile text (pipes in cells, raw HTML, Markdown markup)."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.claims import render
from pipeline.claims.model import Image, Table, Text
from pipeline.config.settings import compose
from pipeline.stages import report

COMMITTED = Path(__file__).resolve().parents[1] / "reports" / "results"


class _Page(HTMLParser):
    """The tables (rows of cell texts, header row first) and image sources of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """GitHub-style tables of a Markdown text, cells as written (separator rows left out)."""
    tables, current = [], None
    for line in markdown.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            if not re.fullmatch(r"\|(-+\|)+", line):
                cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
                current.append([c.strip().replace("\\|", "|") for c in cells])
        else:
            current = None
    return tables


def markdown_images(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", markdown)


def shown(cell) -> str:
    """A cell as a reader sees it: Markdown's code and bold marks gone."""
    return str(cell).replace("**", "").replace("`", "").replace("\n", " ")


def source_tables(blocks) -> list[list[list[str]]]:
    return [[list(map(str, b.header)), *[list(map(str, r)) for r in b.rows]] for b in blocks if isinstance(b, Table)]


@pytest.fixture(scope="module")
def committed_report(tmp_path_factory):
    """The report the committed sweep results render, and the blocks it was written from."""
    from pipeline.claims.catalogue import all_claims, load_remedy, load_results

    tmp = tmp_path_factory.mktemp("report")
    shutil.copytree(COMMITTED, tmp / "results")
    cfg = compose([f"report.dir={tmp / 'report'}", f"report.results_dir={tmp / 'results'}", f"run_dir={tmp}"])
    written = report.build(cfg)
    claims = all_claims(load_results(cfg.report.results_dir), None, load_remedy(cfg.report.results_dir))
    figures = {p.stem: p for p in written["figures"].iterdir()}
    blocks = render.page(claims, None, figures)
    return written["report.md"].read_text(), written["report.html"].read_text(), blocks


def test_the_html_has_the_markdowns_tables_cell_for_cell(committed_report):
    markdown, html, blocks = committed_report
    expected = source_tables(blocks)
    assert len(expected) >= 5 and sum(len(t) for t in expected) >= 30  # the summary and the claims' tables
    in_markdown = markdown_tables(markdown)
    in_html = html_page(html).tables
    assert [len(t) for t in in_html] == [len(t) for t in in_markdown] == [len(t) for t in expected]
    assert [[len(r) for r in t] for t in in_html] == [[len(r) for r in t] for t in expected]
    assert in_markdown == [[[c.replace("\n", " ") for c in r] for r in t] for t in expected]
    assert in_html == [[[shown(c) for c in r] for r in t] for t in expected]
    summary = in_html[0]
    assert summary[0] == ["#", "claim", "measured", "verdict", "published", "command"]
    assert [r[0] for r in summary[1:]] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "13",
        "14",
        "15",
        "R",
        "S",
        "C",
    ]


def test_the_html_shows_the_markdowns_figures(committed_report):
    markdown, html, blocks = committed_report
    images = markdown_images(markdown)
    assert images == [b.path for b in blocks if isinstance(b, Image)]
    assert {"figures/activations.png", "figures/scaling.png", "figures/samples.png", "figures/linear.png"} <= set(
        images
    )
    assert html_page(html).images == images
    for caption in (b.caption for b in blocks if isinstance(b, Image)):
        assert f'alt="{caption}"' in html or f'alt="{caption.replace(chr(34), "&quot;")}"' in html


def test_hostile_text_keeps_its_cells_and_never_becomes_markup():
    blocks = [
        render.Heading(1, "A <b>title</b>"),
        Text("**Measured:** 0.97 < 1 and <script>alert(1)</script> `code | pipe`."),
        Table(["a|b", "c"], [["x | y", "`python -m pipeline.stages.train seed=1`"], ["**bold**", "plain"]]),
        Image("figures/x.png", "a figure"),
    ]
    markdown = render.to_markdown(blocks)
    html = render.to_html(markdown)
    page = html_page(html)
    assert page.scripts == 0 and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h1>A &lt;b&gt;title&lt;/b&gt;</h1>" in html
    assert "<strong>Measured:</strong> 0.97 &lt; 1" in html and "<code>code | pipe</code>" in html
    assert page.tables == [[["a|b", "c"], ["x | y", "python -m pipeline.stages.train seed=1"], ["bold", "plain"]]]
    assert markdown_tables(markdown) == [[["a|b", "c"], ["x | y", blocks[2].rows[0][1]], ["**bold**", "plain"]]]
    assert page.images == markdown_images(markdown) == ["figures/x.png"]
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</body></html>")
