"""Claim 9: the mechanics of backpropagation, measured on the trained seed MLP (claim_mechanics).

The verdict rule is fixed here, before any number is read: every seed must pass all four parts.
"""

from __future__ import annotations

import math
import statistics

from pipeline.claims.model import Claim, Figure, Table, Text, metric, need, pct
from pipeline.common import metric_names as names

PRESET = "claim_mechanics"
MAX_LOGIT_DIFF = 1e-4  # float32 rounding between NumPy's and torch's matrix products
INIT_ACC = (0.05, 0.15)  # a guess among ten digits
INIT_LOSS_TOLERANCE = 0.1  # |loss - ln 10|
# The cheap gradient principle: a gradient costs "often within a factor of 5" of the function
# (Griewank & Walther 2008, as stated by Kakade & Lee, NeurIPS 2018).
MAX_BACKWARD_OVER_FORWARD = 5.0


def _m(job: dict, key: str) -> float:
    return need(job, names.mechanics(key))


def parts(job: dict) -> dict[str, bool]:
    """The four parts of the rule for one seed."""
    return {
        "NumPy forward pass": _m(job, "numpy_prediction_agreement") == 1.0
        and _m(job, "numpy_max_logit_diff") <= MAX_LOGIT_DIFF,
        "initialisation": INIT_ACC[0] <= _m(job, "init_acc") <= INIT_ACC[1]
        and abs(_m(job, "init_loss") - math.log(10)) <= INIT_LOSS_TOLERANCE,
        "gradcheck": bool(_m(job, "gradcheck_all_fast")) and bool(_m(job, "gradcheck_output_layer")),
        "backward cost": _m(job, "backward_over_forward") <= MAX_BACKWARD_OVER_FORWARD,
    }


def mechanics_claim(results: dict) -> Claim:
    claim = Claim(
        "9",
        "Backpropagation is cheap and exact: a plain NumPy forward pass reproduces the network, an untrained "
        "one guesses (about 10 %, loss about ln 10), its gradients pass gradcheck, and the backward pass "
        "costs a small multiple of the forward pass where finite differences would need two per parameter.",
        PRESET,
    )
    if PRESET not in results:
        return claim
    jobs = results[PRESET]["jobs"]
    checked = [parts(j) for j in jobs]
    ratios = [_m(j, "backward_over_forward") for j in jobs]
    passes = int(_m(jobs[0], "finite_difference_passes"))
    fd_over_grad = statistics.fmean(_m(j, "finite_difference_over_gradient") for j in jobs)
    claim.measured = (
        f"over {len(jobs)} seeds: NumPy and the model predict the same digit on "
        f"{pct(min(_m(j, 'numpy_prediction_agreement') for j in jobs))} of the test set; untrained accuracy "
        f"{', '.join(pct(_m(j, 'init_acc'), 1) for j in jobs)}, loss "
        f"{', '.join(format(_m(j, 'init_loss'), '.3f') for j in jobs)} (ln 10 = {math.log(10):.3f}); gradcheck "
        f"{'passes' if all(c['gradcheck'] for c in checked) else 'fails'}; backward "
        f"{min(ratios):.2f}-{max(ratios):.2f}x the forward pass, finite differences ({passes:,} forward passes) "
        f"about {fd_over_grad:,.0f}x a backpropagated gradient"
    )
    failed = sorted({name for c in checked for name, ok in c.items() if not ok})
    claim.verdict = "holds" if not failed else f"does not hold ({', '.join(failed)})"
    claim.details.append(
        Table(
            [
                "seed",
                "test acc",
                "NumPy: same prediction",
                "NumPy: max logit difference",
                "untrained acc",
                "untrained loss",
                "gradcheck (all parameters, fast / output layer, entry by entry)",
                "forward",
                "backward",
                "backward / forward",
                "finite differences (estimated)",
            ],
            [
                [
                    j["params"].get("seed"),
                    pct(metric(j, names.TEST_ACC)),
                    pct(_m(j, "numpy_prediction_agreement")),
                    f"{_m(j, 'numpy_max_logit_diff'):.1e}",
                    pct(_m(j, "init_acc")),
                    f"{_m(j, 'init_loss'):.4f}",
                    f"{'pass' if _m(j, 'gradcheck_all_fast') else 'FAIL'} / "
                    f"{'pass' if _m(j, 'gradcheck_output_layer') else 'FAIL'} "
                    f"({int(_m(j, 'gradcheck_output_layer_entries'))} entries)",
                    f"{_m(j, 'forward_ms'):.2f} ms",
                    f"{_m(j, 'backward_ms'):.2f} ms",
                    f"{_m(j, 'backward_over_forward'):.2f}",
                    f"{_m(j, 'finite_difference_s'):.0f} s",
                ]
                for j in jobs
            ],
        )
    )
    claim.details.append(
        Text(
            "Times are medians of 30 passes over one batch of 256 test images in float32 on this CPU, one thread "
            "(the pipeline's reproducible mode); "
            "finite differences are estimated as 2 x (parameters) x the measured forward pass, not run. "
            "gradcheck runs in float64 on 4 images: every parameter at once in fast mode (random directional "
            f"derivatives), and the output layer entry by entry. Verdict rule, for every seed: the NumPy pass "
            f"predicts the same digit on 100 % of the test set with logits within {MAX_LOGIT_DIFF:g}; the "
            f"untrained network (built with the run's seed) in [{pct(INIT_ACC[0], 0)}, {pct(INIT_ACC[1], 0)}] "
            f"accuracy with loss within {INIT_LOSS_TOLERANCE} of ln 10; gradcheck passes; backward at most "
            f"{MAX_BACKWARD_OVER_FORWARD:g}x the forward pass. The NumPy pass is `numpy_logits` in "
            "src/pipeline/nn/mechanics.py."
        )
    )
    claim.details.append(
        Figure(
            "mechanics",
            "Seconds for one gradient of the loss on 256 images: backpropagation "
            "against finite differences (log scale)",
        )
    )
    claim.data = {
        "forward_ms": statistics.fmean(_m(j, "forward_ms") for j in jobs),
        "backward_ms": statistics.fmean(_m(j, "backward_ms") for j in jobs),
        "finite_difference_s": statistics.fmean(_m(j, "finite_difference_s") for j in jobs),
        "passes": passes,
    }
    return claim
