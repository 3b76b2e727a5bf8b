"""Every claim of the report, in its order, from the sweep results and the pipeline's own outputs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from pipeline.claims.baselines import baselines_claim
from pipeline.claims.brittleness import brittleness_claim, remedy_claim
from pipeline.claims.composition import composition_claim
from pipeline.claims.compute import compute_claim
from pipeline.claims.depth import depth_claim
from pipeline.claims.loss_curve import loss_curve_claim
from pipeline.claims.mechanics import mechanics_claim
from pipeline.claims.model import Claim, need
from pipeline.claims.perturbation import perturbation_claim
from pipeline.claims.published import PUBLISHED
from pipeline.claims.scaling import optuna_summary, samples_claim, scaling_claim
from pipeline.claims.techniques import techniques_claim
from pipeline.claims.textbook import activations_claim, filters_claim, linear_claim, seeds_claim
from pipeline.common import metric_names as names


def load_results(results_dir: str | Path) -> dict[str, dict]:
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        data = json.loads(path.read_text())
        if "jobs" not in data:  # not a preset sweep (remedy.json: see load_remedy)
            continue
        data["jobs"] = [j for j in data["jobs"] if j["status"] == "FINISHED"]
        out[data["preset"]] = data
    return out


def load_remedy(results_dir: str | Path) -> dict | None:
    """reports/results/remedy.json, left by `python -m pipeline.stages.remedy RUN_DIR record`."""
    path = Path(results_dir) / "remedy.json"
    return json.loads(path.read_text()) if path.is_file() else None


def all_claims(results: dict, main_robustness: dict | None = None, remedy: dict | None = None) -> list[Claim]:
    relu = None
    if "claim_mlp" in results:
        relu = statistics.fmean(need(j, names.TEST_ACC) for j in results["claim_mlp"]["jobs"])
    claims = [
        seeds_claim(
            "1",
            "A 784-128-64-10 MLP, about 110,000 parameters, reaches about 97 %.",
            "claim_mlp",
            results,
            (0.96, 0.985),
        ),
        seeds_claim("2", "Add convolutional layers and you can push to 99.5 %.", "claim_cnn", results, (0.995, 1.0)),
        linear_claim(results, relu),
        activations_claim(results),
        scaling_claim(results),
        samples_claim(results),
        filters_claim(results),
        brittleness_claim(results, main_robustness),
        mechanics_claim(results),
        baselines_claim(results),
        loss_curve_claim(results),
        depth_claim(results),
        techniques_claim(results),
        composition_claim(results),
        perturbation_claim(results),
    ]
    search, robust = optuna_summary(results), remedy_claim(remedy)
    claims += ([robust] if robust else []) + ([search] if search else []) + [compute_claim(results)]
    for claim in claims:
        claim.published = PUBLISHED.get(claim.number, "")
        claim.sweep_seconds = results.get(claim.preset or "", {}).get("seconds")
    return claims
