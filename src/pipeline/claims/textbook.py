"""Claims 1-4 and 7: what an MLP and a CNN reach, linear collapse, activations, what layers detect.

Each evaluator reads its preset sweep's jobs and returns a Claim; its verdict rule is the
code beside the numbers and is stated in the claim's text.
"""

from __future__ import annotations

from pipeline.claims.model import Claim, Figure, Image, Table, Text, mean_std, metric, n_params, need, pct
from pipeline.claims.results import FIGURE_PRESETS
from pipeline.common import metric_names as names

TARGET_VAL_ACC = 0.97  # "time to accuracy" for the activation comparison


def seeds_claim(number: str, text: str, preset: str, results: dict, target: tuple[float, float]) -> Claim:
    claim = Claim(number, text, preset)
    if preset not in results:
        return claim
    jobs = results[preset]["jobs"]
    accs = [need(j, names.TEST_ACC) for j in jobs]
    mean, std = mean_std(accs)
    size = n_params(jobs[0])
    claim.measured = f"{size:,} parameters; test accuracy {pct(mean)} ± {pct(std)} (mean ± std over {len(jobs)} seeds)"
    low, high = target
    claim.verdict = "holds" if low <= mean <= high else "does not hold"
    claim.details.append(
        Table(
            ["seed", "test acc", "test loss", "best val acc", "training time"],
            [
                [
                    j["params"].get("seed"),
                    pct(metric(j, names.TEST_ACC)),
                    f"{metric(j, names.TEST_LOSS):.4f}",
                    pct(metric(j, names.VAL_BEST_ACC)),
                    f"{metric(j, names.TRAIN_SECONDS):.0f} s",
                ]
                for j in jobs
            ],
        )
    )
    claim.details.append(Text(f"Verdict rule: mean test accuracy in [{pct(low, 1)}, {pct(high, 1)}]."))
    claim.data = {"accs": accs}
    return claim


def linear_claim(results: dict, relu_acc: float | None) -> Claim:
    claim = Claim(
        "3",
        "Without a nonlinearity the stack collapses into one linear transformation "
        "(about 92 %), and depth does not help.",
        "claim_linear",
    )
    if "claim_linear" not in results:
        return claim
    jobs = sorted(results["claim_linear"]["jobs"], key=lambda j: metric(j, names.collapse("layers")) or 0)
    rows, diffs, agree = [], [], []
    for j in jobs:
        diffs.append(need(j, names.collapse("max_logit_diff")))
        agree.append(need(j, names.collapse("prediction_agreement")))
        rows.append(
            [
                int(need(j, names.collapse("layers"))),
                j["params"]["model.hidden"],
                f"{n_params(j):,}",
                pct(metric(j, names.TEST_ACC)),
                pct(metric(j, names.collapse("single_map_acc"))),
                f"{metric(j, names.collapse('max_logit_diff')):.1e}",
                pct(metric(j, names.collapse("prediction_agreement")), 2),
                int(need(j, names.collapse("map_rank"))),
            ]
        )
    accs = [need(j, names.TEST_ACC) for j in jobs]
    single = accs[0]
    depths = ", ".join(str(r[0]) for r in rows[:-1]) + f" and {rows[-1][0]}" if len(rows) > 1 else str(rows[0][0])
    claim.measured = (
        f"test accuracy {', '.join(pct(a) for a in accs)} for {depths} linear layers; "
        f"each stack equals its multiplied-out 784x10 map to {max(diffs):.1e} in the logits "
        f"and predicts the same digit on {pct(min(agree))} of the test set"
    )
    spread = max(accs) - single
    holds = max(diffs) < 1e-3 and min(agree) >= 0.999 and spread <= 0.01 and 0.90 <= single <= 0.94
    claim.verdict = "holds" if holds else "does not hold"
    claim.details.append(
        Table(
            [
                "layers",
                "hidden",
                "parameters",
                "network test acc",
                "single map test acc",
                "max logit difference",
                "same prediction",
                "rank of map",
            ],
            rows,
        )
    )
    extra = f" The ReLU network of the same shape: {pct(relu_acc)}." if relu_acc else ""
    claim.details.append(
        Text(
            "Verdict rule: logits within 1e-3 of the single map, the same prediction on "
            ">= 99.9 % of images, the deepest stack within 1 point of the single layer, and the "
            f"single layer in [90 %, 94 %]. Deepest minus single layer: {100 * spread:+.2f} points." + extra,
        )
    )
    claim.data = {"layers": [r[0] for r in rows], "accs": accs, "relu_acc": relu_acc}
    claim.details.append(Figure("linear", "Test accuracy against depth, identity activations vs ReLU"))
    return claim


def _time_to(job: dict, target: float) -> tuple[int | None, float | None]:
    """(epochs, seconds of training) until val/acc first reaches target."""
    elapsed = 0.0
    for epoch, (acc, secs) in enumerate(
        zip(job["history"].get(names.VAL_ACC, []), job["history"].get(names.EPOCH_SECONDS, []), strict=False), start=1
    ):
        elapsed += secs
        if acc >= target:
            return epoch, elapsed
    return None, None


def activations_claim(results: dict) -> Claim:
    claim = Claim("4", "ReLU replaced slower sigmoids.", "claim_activations")
    if "claim_activations" not in results:
        return claim
    rows, series, reach = [], {}, {}
    for j in results["claim_activations"]["jobs"]:
        name = j["params"]["model.activation"]
        epochs, secs = _time_to(j, TARGET_VAL_ACC)
        reach[name] = epochs
        rows.append(
            [
                name,
                pct(metric(j, names.TEST_ACC)),
                f"{metric(j, names.TEST_LOSS):.4f}",
                pct(j["history"][names.VAL_ACC][0]),
                epochs or "not reached",
                f"{secs:.1f} s" if secs else "-",
                pct(metric(j, names.attack_acc("pgd", 0.1))),
            ]
        )
        series[name] = j["history"]
    never = len(results["claim_activations"]["jobs"][0]["history"].get(names.VAL_ACC, [])) + 1
    order = sorted(reach, key=lambda n: reach[n] or never)
    claim.measured = f"epochs to {pct(TARGET_VAL_ACC, 0)} validation accuracy: " + ", ".join(
        f"{n} {reach[n] or 'not reached'}" for n in order
    )
    sig, relu = reach.get("sigmoid") or never, reach.get("relu") or never
    claim.verdict = "holds" if relu < sig else ("holds only partly (a tie)" if relu == sig else "does not hold")
    claim.details.append(
        Table(
            [
                "activation",
                "test acc",
                "test loss",
                "val acc after epoch 1",
                f"epochs to {pct(TARGET_VAL_ACC, 0)} val",
                "training time to it",
                "PGD eps 0.1 acc",
            ],
            rows,
        )
    )
    claim.details.append(
        Text(
            "Same network, optimiser (Adam, lr 1e-3), seed and batches; only the activation "
            "differs. Verdict rule: ReLU reaches the target in fewer epochs than sigmoid.",
        )
    )
    claim.details.append(Figure("activations", "Validation accuracy and training loss per epoch"))
    claim.data = {"series": series}
    return claim


def filters_claim(results: dict) -> Claim:
    claim = Claim(
        "7", "Layer-1 filters detect simple things (edges, blobs); deeper layers respond to larger parts.", "claim_mlp"
    )
    figures = [
        (preset, key, fig)
        for preset in FIGURE_PRESETS
        if preset in results
        for key, fig in results[preset].get("figures", {}).items()
    ]
    if not figures:
        return claim
    claim.measured = "figures of the first-layer weights and of the digits that drive the deepest units"
    claim.verdict = "see figures (a picture, not a number)"
    for preset, key, fig in figures:
        model = "MLP" if preset == "claim_mlp" else "CNN"
        what = (
            "first-layer weights"
            if key == "filters_layer1"
            else "deepest hidden units: the test digits that excite each most"
        )
        claim.details.append(Image(f"results/{fig['path']}", f"{model} ({preset}, job {fig['job']}): {what}"))
    claim.details.append(Text("CNN: `python -m pipeline.stages.train experiment=claim_cnn`."))
    return claim
