"""Claim 10: deep nets beat the classical alternatives on MNIST (claim_baselines beside claim_mlp
and claim_cnn). The verdict rules are fixed here, before any number is read."""

from __future__ import annotations

from pipeline.claims.model import Claim, Figure, Table, Text, mean_std, metric, need, pct
from pipeline.common import metric_names as names

PRESET = "claim_baselines"
LABELS = {
    "logistic": "logistic regression",
    "tree": "one decision tree",
    "forest": "random forest (100 trees)",
    "knn": "k-nearest neighbours (k = 3)",
    "nystroem": "kernel SVM, approximated (RBF via Nystroem, linear SVM)",
    "svm": "kernel SVM (RBF, libsvm's SVC)",
}
SHORT = {  # the figure's labels
    "logistic": "logistic",
    "tree": "one tree",
    "forest": "random forest",
    "knn": "k-NN",
    "nystroem": "SVM (Nystroem)",
    "svm": "SVM (RBF)",
}
# The same methods as published: the MNIST database page's table (LeCun et al. 1998 unless
# named) and the docstring of scikit-learn's benchmarks/bench_mnist.py (its own run, 60,000 images).
PUBLISHED = {
    "logistic": "linear classifier 12.0 % (LeCun); logistic regression 8.24 % (scikit-learn)",
    "tree": "CART 12.19 % (scikit-learn)",
    "forest": "random forest 3.18 %, ExtraTrees 2.94 % (scikit-learn)",
    "knn": "k-NN, L2 5.0 % (LeCun); 3.09 % (Wilder)",
    "nystroem": "Nystroem SVM 2.28 % (scikit-learn)",
    "svm": "SVM, Gaussian kernel 1.4 % (MNIST page)",
    "mlp": "2-layer NN, 800 units, cross-entropy 1.6 % (Simard et al. 2003); sklearn MLP 2.24 %",
    "cnn": "LeNet-5 0.95 % (LeCun et al. 1998)",
}
TIE_SIGMAS = 2  # MLP against SVM: a difference within 2 standard deviations of the MLP's seeds is a tie


def _networks(results: dict) -> dict[str, list[float]]:
    """Test errors over seeds of the MLP and CNN presets."""
    out = {}
    for key, preset in (("mlp", "claim_mlp"), ("cnn", "claim_cnn")):
        if preset in results:
            out[key] = [1 - need(j, names.TEST_ACC) for j in results[preset]["jobs"]]
    return out


def mlp_against_svm(mlp_errors: list[float], svm_error: float) -> str:
    mean, std = mean_std(mlp_errors)
    diff = mean - svm_error
    if abs(diff) <= TIE_SIGMAS * std:
        return f"a tie ({100 * diff:+.2f} points, within {TIE_SIGMAS} x the MLP's spread of {100 * std:.2f})"
    return f"the {'SVM' if diff > 0 else 'MLP'} is better by {100 * abs(diff):.2f} points"


def baselines_claim(results: dict) -> Claim:
    claim = Claim(
        "10",
        "Deep nets beat the alternatives (SVMs, decision trees, kernel methods) on MNIST.",
        PRESET,
        stage="baselines",
    )
    nets = _networks(results)
    if PRESET not in results or "cnn" not in nets:
        return claim
    jobs = {j["params"]["model.name"]: j for j in results[PRESET]["jobs"]}
    errors = {name: need(j, "test/error") for name, j in jobs.items()}
    best = min(errors, key=lambda n: errors[n])
    cnn_mean, cnn_std = mean_std(nets["cnn"])
    margin = errors[best] - cnn_mean
    holds = margin > cnn_std
    claim.verdict = "holds" if holds else "does not hold"
    claim.measured = (
        f"CNN {pct(cnn_mean)} ± {pct(cnn_std)} test error against the best classical method, "
        f"{LABELS.get(best, best)}, at {pct(errors[best])} ({100 * margin:.2f} points, "
        f"{'more' if holds else 'not more'} than the CNN's spread over seeds)"
    )
    svm = next((k for k in ("svm", "nystroem") if k in errors), None)  # the full SVM if it ran
    if "mlp" in nets and svm:
        claim.measured += f"; the MLP against the {LABELS[svm]}: {mlp_against_svm(nets['mlp'], errors[svm])}"
    ranked = []  # (test error, row)
    for name, j in jobs.items():
        ranked.append(
            (
                errors[name],
                [
                    LABELS.get(name, name),
                    pct(errors[name]),
                    f"{need(j, 'time/fit_s'):.1f} s",
                    f"{need(j, 'time/predict_us_per_image'):.0f} µs",
                    PUBLISHED.get(name, ""),
                ],
            )
        )
    for key, preset, label in (("mlp", "claim_mlp", "MLP 784-128-64-10"), ("cnn", "claim_cnn", "CNN")):
        if key in nets:
            mean, std = mean_std(nets[key])
            seconds = [metric(j, names.TRAIN_SECONDS) or 0.0 for j in results[preset]["jobs"]]
            row = [
                f"**{label}** ({len(nets[key])} seeds, `{preset}`)",
                f"{pct(mean)} ± {pct(std)}",
                f"{sum(seconds) / len(seconds):.0f} s",
                "",
                PUBLISHED[key],
            ]
            ranked.append((mean, row))
    rows = [row for _, row in sorted(ranked, key=lambda pair: pair[0])]
    claim.details.append(
        Table(["method", "test error", "training time", "prediction per image", "published test error"], rows)
    )
    claim.details.append(
        Text(
            "Same split for all: the networks' 55,000 training images (data.split_seed 0), pixels / 255, "
            "the 10,000 test images; no deskewing or augmentation. Verdict rules: deep beats the alternatives "
            "if the CNN's mean test error is below the best classical method's by more than the CNN's standard "
            "deviation over seeds; the MLP against the kernel SVM (the full one, else the Nystroem approximation) "
            f"is a tie if they differ by at most {TIE_SIGMAS} "
            "standard deviations of the MLP's seeds. Published figures: the MNIST database page's table "
            "(LeCun et al. 1998; Wilder) and scikit-learn's benchmarks/bench_mnist.py. The classical methods' "
            "prediction time is per image over the whole test set (k-NN compares each with all 55,000 "
            "training images). Reproduce: `python -m pipeline.stages.baselines experiment=claim_baselines`."
        )
    )
    claim.details.append(Figure("baselines", "Test error against training time, classical methods and networks"))
    claim.data = {
        "points": [(SHORT.get(n, n), errors[n], need(jobs[n], "time/fit_s")) for n in errors],
        "networks": {
            key: (
                mean_std(nets[key]),
                sum(metric(j, names.TRAIN_SECONDS) or 0.0 for j in results[preset]["jobs"])
                / len(results[preset]["jobs"]),
            )
            for key, preset in (("mlp", "claim_mlp"), ("cnn", "claim_cnn"))
            if key in nets
        },
    }
    return claim
