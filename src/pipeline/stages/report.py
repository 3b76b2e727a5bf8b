"""Report stage: the seed's claims beside our measurements, as Markdown and HTML with figures.

    dvc repro report                                  # the DVC stage
    python -m pipeline.stages.report --params params.yaml    # the same, by hand

Reads reports/results/*.json (left by the preset sweeps, see claims/results.py) and the
DVC pipeline's own measurements (<run_dir>/details/); writes reports/report.md, reports/report.html
(rendered from that Markdown) and reports/figures/, and logs them to MLflow as one `report` run.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from pipeline.claims import render
from pipeline.claims.catalogue import all_claims, load_remedy, load_results
from pipeline.claims.figures import FIGURES
from pipeline.claims.model import Figure
from pipeline.common import atomic, headline


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def build(cfg: DictConfig) -> dict[str, Path]:
    out_dir = Path(cfg.report.dir)
    results = load_results(cfg.report.results_dir)
    run_dir = Path(cfg.run_dir)
    claims = all_claims(results, _read_json(run_dir / headline.ROBUSTNESS_DETAILS), load_remedy(cfg.report.results_dir))
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    figure_paths = {}
    for c in claims:
        for detail in c.details:
            if isinstance(detail, Figure):
                figure_paths[detail.key] = FIGURES[detail.key](c.data, figure_dir / f"{detail.key}.png")
    markdown = render.to_markdown(render.page(claims, _read_json(run_dir / headline.EVALUATION_DETAILS), figure_paths))
    written = {}
    for name, text in (("report.md", markdown), ("report.html", render.to_html(markdown))):
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
