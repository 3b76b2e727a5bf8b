"""A claim as the report shows it: its sentence, what was measured, the verdict, and typed details.

A detail is a Table, a Text paragraph, a Figure the report draws from the claim's data, or an
Image already on disk; claims/render.py turns them into Markdown and HTML. The helpers below
read a sweep job's metrics and format numbers the same way for every claim.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Figure:
    """A figure the report draws from the claim's data (claims/figures.py), by key."""

    key: str
    caption: str


@dataclass(frozen=True)
class Image:
    """An existing picture, its path relative to reports/."""

    path: str
    caption: str


Detail = Table | Text | Figure | Image


@dataclass
class Claim:
    number: str
    text: str
    preset: str | None
    measured: str = "not measured yet"
    verdict: str = "not run"
    details: list[Detail] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # what the figures are drawn from
    published: str = ""  # the literature's own figure for the claim, with its source
    stage: str = "train"  # the stage whose sweep measures it: train, or baselines
    sweep_seconds: float | None = None  # how long its preset's sweep took, start to end

    @property
    def command(self) -> str:
        return f"python -m pipeline.stages.{self.stage} experiment={self.preset}" if self.preset else ""


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def metric(job: dict, key: str) -> float | None:
    return job["metrics"].get(key)


def need(job: dict, key: str) -> float:
    """A metric the computation needs: a missing one fails here, by name, rather than further on."""
    value = metric(job, key)
    if value is None:
        raise KeyError(f"metric {key} missing from job {job.get('overrides', '?')}")
    return value


def n_params(job: dict) -> int:
    return int(job["params"]["model.parameters"])
