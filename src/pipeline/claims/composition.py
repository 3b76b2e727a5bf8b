"""Claim 14: networks sometimes fail to combine concepts in new ways (claim_composition: sums of two
digits, 10 of the 100 pairs held out). The verdict rule is fixed here, before any number is read."""

from __future__ import annotations

import statistics

from pipeline.claims.model import Claim, Figure, Table, Text, metric, need, pct

PRESET = "claim_composition"
# Holds if the end-to-end model's accuracy on the unseen pairs is more than this below its accuracy
# on the seen pairs, on at least one split.
MIN_GAP = 0.10
MODELS = {"end_to_end": "end-to-end MLP", "factored": "factored: digit MLP x 2 + fixed adder"}


def composition_verdict(seen: list[float], unseen: list[float]) -> bool:
    """The end-to-end model's accuracies per split, on seen and unseen pairs."""
    return any(s - u > MIN_GAP for s, u in zip(seen, unseen, strict=True))


def _split(job: dict) -> dict:
    out = {
        "split": int(job["params"]["composition.split"]),
        "held_out": job["params"].get("composition.held_out", ""),
    }
    for model in MODELS:
        out[model] = {k: need(job, f"composition/{model}/{k}") for k in ("seen_acc", "unseen_acc", "seconds")}
    out["factored"]["digit_acc"] = metric(job, "composition/factored/digit_acc")
    return out


def composition_claim(results: dict) -> Claim:
    claim = Claim("14", "Networks sometimes fail to combine concepts in new ways.", PRESET, stage="composition")
    if PRESET not in results:
        return claim
    splits = sorted((_split(j) for j in results[PRESET]["jobs"]), key=lambda s: s["split"])
    if not splits:
        return claim
    seen = [s["end_to_end"]["seen_acc"] for s in splits]
    unseen = [s["end_to_end"]["unseen_acc"] for s in splits]
    holds = composition_verdict(seen, unseen)
    claim.verdict = "holds" if holds else "does not hold"
    gaps = [a - b for a, b in zip(seen, unseen, strict=True)]
    f_seen = [s["factored"]["seen_acc"] for s in splits]
    f_unseen = [s["factored"]["unseen_acc"] for s in splits]
    claim.measured = (
        f"the end-to-end MLP scores {pct(statistics.fmean(seen))} on the 90 seen digit pairs and "
        f"{pct(statistics.fmean(unseen))} on the 10 unseen ones (a gap of "
        f"{', '.join(f'{100 * g:.1f}' for g in gaps)} points over {len(splits)} splits); the factored model, "
        f"trained on the same sums, {pct(statistics.fmean(f_seen))} and {pct(statistics.fmean(f_unseen))}"
    )
    rows = []
    for s in splits:
        for model, label in MODELS.items():
            m = s[model]
            rows.append(
                [
                    s["split"],
                    s["held_out"],
                    label,
                    pct(m["seen_acc"]),
                    pct(m["unseen_acc"]),
                    f"{100 * (m['seen_acc'] - m['unseen_acc']):+.1f}",
                    f"{m['seconds']:.0f} s",
                ]
            )
    claim.details.append(
        Table(["split", "held-out pairs", "model", "seen pairs", "unseen pairs", "gap (points)", "training"], rows)
    )
    digit = [s["factored"]["digit_acc"] for s in splits if s["factored"]["digit_acc"] is not None]
    p = results[PRESET]["jobs"][0]["params"]
    claim.details.append(
        Text(
            "Two MNIST digits side by side (28 x 56 pixels), labelled with their sum (19 classes). Training: "
            f"{p.get('composition.per_pair_train', '?')} images for each of the 90 seen pairs, drawn from the "
            "networks' training split; test: "
            f"{p.get('composition.per_pair_test', '?')} images per pair from the test split. The held-out pairs "
            "are (i, p(i)) for a random permutation p: every digit is seen in both positions, and every sum "
            "among the training labels. Both models have hidden layers "
            f"{p.get('composition.hidden', '?')}, Adam, {p.get('composition.epochs', '?')} epochs, and only the "
            "sums as labels; the factored model applies one digit MLP to each half and adds the two "
            "distributions, P(s) = Σ_a P(left = a) P(right = s - a)"
            + (
                f", and learns the digits from sums alone: {pct(statistics.fmean(digit))} on the test digits"
                if digit
                else ""
            )
            + f". Verdict rule: holds if the end-to-end model's accuracy on the unseen pairs falls more than "
            f"{100 * MIN_GAP:.0f} points below its accuracy on the seen pairs on some split."
        )
    )
    claim.details.append(Figure("composition", "Accuracy on seen and unseen digit pairs, end-to-end against factored"))
    claim.data = {"splits": splits}
    return claim
