"""The headline figures: the only numbers DVC tracks as metrics, and the files that hold them.

`dvc metrics show` and `dvc exp show` print one column per metric key, so the files dvc.yaml
declares as `metrics:` carry only these few; everything else the stages measure (per-class
precision and recall, the model's size, every attack, corruption and OOD figure) goes to the
detail files under <run_dir>/details/, which the report and users' scripts read.
Plain strings and dicts, no imports: cheap for every layer.
"""

from __future__ import annotations

# <run_dir>-relative paths. The detail files keep the names MLflow logs them under
# (evaluation/metrics.json, robustness/robustness.json).
EVALUATION_METRICS = "metrics.json"
ROBUSTNESS_METRICS = "robustness.json"
EVALUATION_DETAILS = "details/metrics.json"
ROBUSTNESS_DETAILS = "details/robustness.json"

TEST_KEYS = ("acc", "loss", "ece")  # under "test" in metrics.json
HEADLINE_ATTACK = "pgd"
HEADLINE_EPS = (0.1, 0.3)  # the attack strengths robustness.json and the report quote


def attack_key(attack: str, eps: float) -> str:
    """The key of accuracy under `attack` at `eps`: "pgd_eps0.1" (robustness.json and its details)."""
    return f"{attack}_eps{eps:g}"


ROBUST_KEYS = tuple(attack_key(HEADLINE_ATTACK, eps) for eps in HEADLINE_EPS)


def evaluation_headline(details: dict) -> dict:
    """metrics.json from the evaluate stage's details: {"test": {"acc", "loss", "ece"}}."""
    return {"test": {key: details["test"][key] for key in TEST_KEYS}}


def robustness_headline(details: dict) -> dict:
    """robustness.json from the robustness stage's details: PGD accuracy at the radii it reached."""
    adversarial = details["adversarial"]
    return {key: adversarial[key] for key in ROBUST_KEYS if key in adversarial}
