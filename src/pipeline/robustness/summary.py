"""What the robustness stage measured, as typed records.

The keys of details/robustness.json ("pgd_eps0.1", "eps0.3") and the MLflow metric names
("robust/pgd_acc_eps0.1") are both produced here, from the same record, so the two never
drift apart and nothing parses a key back. robustness.json, the DVC metric, keeps only the
headline keys (common/headline.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.common import headline
from pipeline.common import metric_names as names

SUMMARY_EPS = headline.HEADLINE_EPS  # the attack strengths the details and the report quote


@dataclass(frozen=True)
class AttackPoint:
    """Accuracy under one attack at one eps: a point of the accuracy-vs-eps curve."""

    attack: str
    eps: float
    acc: float

    @property
    def key(self) -> str:
        """details/robustness.json's key under "adversarial"."""
        return headline.attack_key(self.attack, self.eps)

    @property
    def metric(self) -> str:
        return names.attack_acc(self.attack, self.eps)


@dataclass(frozen=True)
class AutoAttackPoint:
    eps: float
    acc: float

    @property
    def key(self) -> str:
        """details/robustness.json's key under "autoattack"."""
        return f"eps{self.eps:g}"

    @property
    def metric(self) -> str:
        return names.autoattack_acc(self.eps)


def curve_rows(points: Sequence[AttackPoint]) -> list[dict[str, float]]:
    """The curve as rows {eps, <attack>: accuracy, ...} in eps order (adversarial.csv)."""
    rows: dict[float, dict[str, float]] = {}
    for p in points:
        rows.setdefault(p.eps, {"eps": p.eps})[p.attack] = p.acc
    return list(rows.values())


def summary_points(points: Sequence[AttackPoint], attacks: Sequence[str]) -> list[AttackPoint]:
    """The curve's points at SUMMARY_EPS (those it reached), attack by attack."""
    found = []
    for attack in attacks:
        for eps in SUMMARY_EPS:
            hit = next((p for p in points if p.attack == attack and math.isclose(p.eps, eps)), None)
            if hit is not None:
                found.append(AttackPoint(attack, eps, hit.acc))
    return found


@dataclass
class Robustness:
    """Everything the robustness stage measured: its details file, the curves and examples behind it."""

    profile: str
    images: int
    clean_acc: float
    clean_ece: float
    attacks: tuple[str, ...]
    curve: list[AttackPoint]  # every attack at every eps of the grid
    autoattack: list[AutoAttackPoint]
    corruptions: list[dict]  # rows {corruption, accuracy, ece}
    severity: dict[str, list[dict]]  # per shift, rows {severity, accuracy, ece}
    ood_auroc: dict[str, float]
    adversarial_examples: tuple[Any, Any, Any, Any, Any, float] = field(repr=False)
    corruption_examples: list = field(repr=False)

    @property
    def adversarial(self) -> list[AttackPoint]:
        return summary_points(self.curve, self.attacks)

    @property
    def worst_corruption(self) -> dict:
        return min(self.corruptions, key=lambda row: row["accuracy"])

    def to_json(self) -> dict:
        """details/robustness.json: its layout is what the report and users' scripts read."""
        worst, rows = self.worst_corruption, self.corruptions
        return {
            "profile": self.profile,
            "images": self.images,
            "clean": {"acc": self.clean_acc, "ece": self.clean_ece},
            "adversarial": {p.key: p.acc for p in self.adversarial},
            "autoattack": {p.key: p.acc for p in self.autoattack},
            "mnist_c": {
                "mean_acc": sum(row["accuracy"] for row in rows) / len(rows),
                "worst": worst["corruption"],
                "worst_acc": worst["accuracy"],
                "mean_ece": sum(row["ece"] for row in rows) / len(rows),
                "acc": {row["corruption"]: row["accuracy"] for row in rows},
                "ece": {row["corruption"]: row["ece"] for row in rows},
            },
            "ood_auroc": self.ood_auroc,
        }

    def mlflow_metrics(self) -> dict[str, float]:
        """The same numbers under the flat names the MLflow run carries (see metric_names.py)."""
        result = self.to_json()
        flat = {
            names.ROBUST_CLEAN_ACC: self.clean_acc,
            names.SHIFT_CLEAN_ECE: self.clean_ece,
            names.MNIST_C_MEAN_ACC: result["mnist_c"]["mean_acc"],
            names.MNIST_C_WORST_ACC: result["mnist_c"]["worst_acc"],
            names.MNIST_C_MEAN_ECE: result["mnist_c"]["mean_ece"],
        }
        flat.update({p.metric: p.acc for p in self.adversarial})
        flat.update({p.metric: p.acc for p in self.autoattack})
        flat.update({names.corruption_acc(row["corruption"]): row["accuracy"] for row in self.corruptions})
        flat.update({names.corruption_ece(row["corruption"]): row["ece"] for row in self.corruptions})
        flat.update({names.ood_auroc(k): v for k, v in self.ood_auroc.items()})
        return flat

    def curve_metrics(self) -> list[tuple[str, float, int]]:
        """The accuracy-vs-eps curves as (metric name, value, step = eps x 100), attack by attack."""
        return [
            (names.attack_curve(attack), p.acc, round(p.eps * 100))
            for attack in self.attacks
            for p in self.curve
            if p.attack == attack
        ]
