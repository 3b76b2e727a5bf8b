"""Claim 11: the training loss falls roughly logarithmically over time.

Two curves are fitted to the loss over training steps of the MLP and CNN presets (steps/train_loss in MLflow,
the mean of each window of 10 steps): L = a - b ln t and the power law L = c + A t^-alpha. The
verdict rule is fixed here, before any number is read.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

from pipeline.claims.model import Claim, Figure, Table, Text
from pipeline.common.metric_names import TRAIN_STEP_LOSS

PRESETS = (("claim_mlp", "MLP"), ("claim_cnn", "CNN"))
MIN_R2 = 0.9  # "roughly logarithmic": the log fit explains at least 90 % of the curve's variance


def _r2_rmse(ys: np.ndarray, fitted: np.ndarray) -> tuple[float, float]:
    residual = float(((ys - fitted) ** 2).sum())
    total = float(((ys - ys.mean()) ** 2).sum())
    return 1 - residual / total if total else float("nan"), math.sqrt(residual / len(ys))


def fit_log(steps: Sequence[float], losses: Sequence[float]) -> dict:
    """Least squares L = a - b ln t."""
    t, ys = np.asarray(steps, float), np.asarray(losses, float)
    slope, intercept = np.polyfit(np.log(t), ys, 1)
    r2, rmse = _r2_rmse(ys, intercept + slope * np.log(t))
    return {"a": float(intercept), "b": float(-slope), "r2": r2, "rmse": rmse}


def fit_power(steps: Sequence[float], losses: Sequence[float]) -> dict:
    """Least squares L = c + A t^-alpha, with c >= 0 and 0 < alpha <= 5."""
    from scipy.optimize import curve_fit

    t, ys = np.asarray(steps, float), np.asarray(losses, float)

    def model(t, c, amplitude, alpha):
        return c + amplitude * t**-alpha

    start = (max(float(ys.min()) * 0.5, 1e-6), float(ys[0]) * float(t[0]) ** 0.5, 0.5)
    (c, amplitude, alpha), _ = curve_fit(
        model, t, ys, p0=start, bounds=([0.0, 0.0, 1e-6], [np.inf, np.inf, 5.0]), maxfev=20000
    )
    r2, rmse = _r2_rmse(ys, model(t, c, amplitude, alpha))
    return {"c": float(c), "A": float(amplitude), "alpha": float(alpha), "r2": r2, "rmse": rmse}


def loss_curve_claim(results: dict) -> Claim:
    claim = Claim("11", "The training loss falls roughly logarithmically over time.", "claim_mlp")
    rows, log_r2, power_wins, fits, models = [], [], 0, 0, []
    series: dict[str, tuple] = {}  # label -> (steps, losses, log fit, power fit) of its first seed
    for preset, label in PRESETS:
        for job in results.get(preset, {}).get("jobs", []):
            curve = job.get("steps", {}).get(TRAIN_STEP_LOSS)
            if not curve or len(curve) < 5:  # a sweep from before the curve was logged
                continue
            if label not in models:
                models.append(label)
            steps, losses = [p[0] for p in curve], [p[1] for p in curve]
            log, power = fit_log(steps, losses), fit_power(steps, losses)
            fits += 1
            log_r2.append(log["r2"])
            power_wins += power["rmse"] < log["rmse"]
            rows.append(
                [
                    f"{label} seed {job['params'].get('seed')}",
                    f"{steps[-1]:,}",
                    f"{log['a']:.3f} - {log['b']:.4f} ln t",
                    f"{log['r2']:.3f}",
                    f"{power['c']:.3f} + {power['A']:.3g} t^-{power['alpha']:.3f}",
                    f"{power['r2']:.3f}",
                    "power law" if power["rmse"] < log["rmse"] else "logarithm",
                ]
            )
            series.setdefault(label, (steps, losses, log, power))  # the first seed's curve for the figure
    if not fits:
        return claim
    claim.measured = (
        f"over {fits} training runs ({' and '.join(models)}), the fit L = a - b ln t explains "
        f"{100 * min(log_r2):.0f}-{100 * max(log_r2):.0f} % of the loss curve's variance (R²); the power law "
        f"c + A t^-alpha fits better on {power_wins} of {fits}"
    )
    claim.verdict = "holds" if min(log_r2) >= MIN_R2 else "does not hold"
    if power_wins * 2 > fits:
        claim.verdict += " (a power law describes it better)"
    claim.details.append(Table(["run", "steps", "log fit", "R²", "power-law fit", "R²", "closer fit (RMSE)"], rows))
    claim.details.append(
        Text(
            "The loss is the training cross-entropy averaged over each window of 10 steps, read off the device "
            "once an epoch (no host sync per step) and logged as steps/train_loss; t is the step at the window's "
            f"end. Verdict rule: the log fit reaches R² >= {MIN_R2} on every run; which fit is closer is told by "
            "the root-mean-square error. The CNN preset trains under a one-cycle learning-rate schedule and the "
            f"MLP under a constant rate, which shapes the tail of each curve. Mean log-fit R²: "
            f"{statistics.fmean(log_r2):.3f}."
        )
    )
    claim.details.append(Figure("loss_curve", "Training loss over steps (log scale) with both fits, first seed"))
    claim.data = {"series": series}
    return claim
