"""Claims 5 and 6 and the hyperparameter search: accuracy against model size and training examples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from pipeline.claims.model import Claim, Figure, Table, Text, metric, n_params, need, pct
from pipeline.common import metric_names as names


def power_law(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """y = a * x^(-b) fitted in log-log space: (a, b, R^2)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    slope = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=False)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(lx, ly, strict=False))
    ss_tot = sum((y - my) ** 2 for y in ly)
    return math.exp(intercept), -slope, 1 - ss_res / ss_tot if ss_tot else 1.0


def scaling_claim(results: dict) -> Claim:
    claim = Claim("5", "Performance scales with size.", "claim_scaling")
    if "claim_scaling" not in results:
        return claim
    jobs = sorted(results["claim_scaling"]["jobs"], key=n_params)
    params = [n_params(j) for j in jobs]
    errors = [1 - need(j, names.TEST_ACC) for j in jobs]
    losses = [metric(j, names.TEST_LOSS) for j in jobs]
    a, b, r2 = power_law(params, errors)
    claim.measured = (
        f"test error = {a:.3g} x parameters^-{b:.3f} (R² = {r2:.2f}) from {params[0]:,} to "
        f"{params[-1]:,} parameters; test accuracy {pct(1 - errors[0])} -> {pct(1 - errors[-1])}"
    )
    claim.verdict = "holds" if b > 0 and errors[-1] < errors[0] else "does not hold"
    claim.details.append(
        Table(
            ["hidden", "parameters", "test acc", "test error", "test loss", "PGD eps 0.1 acc"],
            [
                [
                    j["params"]["model.hidden"],
                    f"{p:,}",
                    pct(1 - e),
                    pct(e),
                    f"{loss:.4f}",
                    pct(metric(j, names.attack_acc("pgd", 0.1))),
                ]
                for j, p, e, loss in zip(jobs, params, errors, losses, strict=False)
            ],
        )
    )
    claim.details.append(
        Text(
            "Same recipe for every size (Adam, lr 1e-3, 8 epochs, best epoch by validation "
            "accuracy). Verdict rule: a positive power-law exponent and the largest model better "
            "than the smallest. Depth points are the last three rows (width 256).",
        )
    )
    claim.details.append(Figure("scaling", "Test error and loss against parameters (log-log), power-law fit"))
    claim.data = {
        "params": params,
        "errors": errors,
        "losses": losses,
        "fit": (a, b, r2),
        "hidden": [j["params"]["model.hidden"] for j in jobs],
    }
    return claim


def samples_claim(results: dict) -> Claim:
    claim = Claim("6", "Networks are sample-inefficient: they need many examples.", "claim_samples_mlp")
    curves = {}
    for preset, label in (("claim_samples_mlp", "MLP"), ("claim_samples_cnn", "CNN")):
        if preset in results:
            jobs = sorted(results[preset]["jobs"], key=lambda j: int(j["params"]["data.train_subset"]))
            curves[label] = (
                [int(j["params"]["data.train_subset"]) for j in jobs],
                [need(j, names.TEST_ACC) for j in jobs],
            )
    if not curves:
        return claim
    parts, rows = [], []
    for label, (ns, accs) in curves.items():
        parts.append(f"{label}: {pct(accs[0], 1)} with {ns[0]:,} examples, {pct(accs[-1], 1)} with {ns[-1]:,}")
        rows += [[label, f"{n:,}", pct(a)] for n, a in zip(ns, accs, strict=False)]
    claim.measured = "; ".join(parts)
    mlp = curves.get("MLP") or next(iter(curves.values()))
    claim.verdict = "holds" if mlp[1][-1] - mlp[1][0] > 0.1 else "does not hold"
    claim.details.append(Table(["model", "training examples", "test acc"], rows))
    claim.details.append(
        Text(
            "Every size is trained for the same number of steps (a small subset is cycled), "
            "so only the number of distinct examples changes. Verdict rule: more than 10 points "
            "between the smallest and the full training set. CNN: `python -m pipeline.stages.train "
            "experiment=claim_samples_cnn`.",
        )
    )
    claim.details.append(Figure("samples", "Test accuracy against the number of training examples"))
    claim.data = {"curves": curves}
    return claim


def optuna_summary(results: dict) -> Claim | None:
    if "optuna_mlp" not in results:
        return None
    jobs = results["optuna_mlp"]["jobs"]
    best = max(jobs, key=lambda j: need(j, names.VAL_BEST_ACC))
    claim = Claim("S", "Hyperparameter search (Optuna TPE over lr, first-layer width, dropout).", "optuna_mlp")
    p = best["params"]
    claim.measured = (
        f"best of {len(jobs)} trials (chosen by validation accuracy): lr {float(p['optim.lr']):.2e}, "
        f"hidden {p['model.hidden']}, dropout {float(p['model.dropout']):.2f}: val "
        f"{pct(metric(best, names.VAL_BEST_ACC))}, test {pct(metric(best, names.TEST_ACC))}"
    )
    claim.verdict = "search result"
    claim.details.append(
        Table(
            ["trial", "lr", "hidden", "dropout", "val acc", "test acc"],
            [
                [
                    j["job"],
                    f"{float(j['params']['optim.lr']):.2e}",
                    j["params"]["model.hidden"],
                    f"{float(j['params']['model.dropout']):.2f}",
                    pct(metric(j, names.VAL_BEST_ACC)),
                    pct(metric(j, names.TEST_ACC)),
                ]
                for j in jobs
            ],
        )
    )
    return claim
