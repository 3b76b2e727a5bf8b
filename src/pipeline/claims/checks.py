"""The seed's claims, each checked against the results its preset sweep left in reports/results.

Every check returns a Claim: the sentence, what was measured (with the command
that measured it), a verdict, and the tables and figure data the report draws.
Thresholds for verdicts are stated in the text, not hidden.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common import metric_names as names

TARGET_VAL_ACC = 0.97  # "time to accuracy" for the activation comparison


@dataclass
class Claim:
    number: str
    text: str
    preset: str | None
    measured: str = "not measured yet"
    verdict: str = "not run"
    # ("table", header, rows) | ("text", str) | ("figure", key drawn by the report, caption)
    # | ("image", existing file relative to reports/, caption)
    details: list = field(default_factory=list)
    data: dict = field(default_factory=dict)  # what the figures are drawn from

    @property
    def command(self) -> str:
        return f"python -m pipeline.stages.train experiment={self.preset}" if self.preset else ""


def load_results(results_dir: str | Path) -> dict[str, dict]:
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        data = json.loads(path.read_text())
        if "jobs" not in data:  # not a preset sweep (remedy.json: see load_remedy)
            continue
        data["jobs"] = [j for j in data["jobs"] if j["status"] == "FINISHED"]
        out[data["preset"]] = data
    return out


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f} %"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _m(job: dict, key: str) -> float | None:
    return job["metrics"].get(key)


def _v(job: dict, key: str) -> float:
    """A metric the computation needs: a missing one fails here, by name, rather than further on."""
    value = _m(job, key)
    if value is None:
        raise KeyError(f"metric {key} missing from job {job.get('overrides', '?')}")
    return value


def _params(job: dict) -> int:
    return int(job["params"]["model.parameters"])


def seeds_claim(number: str, text: str, preset: str, results: dict, target: tuple[float, float]) -> Claim:
    claim = Claim(number, text, preset)
    if preset not in results:
        return claim
    jobs = results[preset]["jobs"]
    accs = [_v(j, names.TEST_ACC) for j in jobs]
    mean, std = _mean_std(accs)
    n_params = _params(jobs[0])
    claim.measured = (
        f"{n_params:,} parameters; test accuracy {_pct(mean)} ± {_pct(std)} (mean ± std over {len(jobs)} seeds)"
    )
    low, high = target
    claim.verdict = "holds" if low <= mean <= high else "does not hold"
    claim.details.append(
        (
            "table",
            ["seed", "test acc", "test loss", "best val acc", "training time"],
            [
                [
                    j["params"].get("seed"),
                    _pct(_m(j, names.TEST_ACC)),
                    f"{_m(j, names.TEST_LOSS):.4f}",
                    _pct(_m(j, names.VAL_BEST_ACC)),
                    f"{_m(j, names.TRAIN_SECONDS):.0f} s",
                ]
                for j in jobs
            ],
        )
    )
    claim.details.append(("text", f"Verdict rule: mean test accuracy in [{_pct(low, 1)}, {_pct(high, 1)}]."))
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
    jobs = sorted(results["claim_linear"]["jobs"], key=lambda j: _m(j, names.collapse("layers")) or 0)
    rows, diffs, agree = [], [], []
    for j in jobs:
        diffs.append(_v(j, names.collapse("max_logit_diff")))
        agree.append(_v(j, names.collapse("prediction_agreement")))
        rows.append(
            [
                int(_v(j, names.collapse("layers"))),
                j["params"]["model.hidden"],
                f"{_params(j):,}",
                _pct(_m(j, names.TEST_ACC)),
                _pct(_m(j, names.collapse("single_map_acc"))),
                f"{_m(j, names.collapse('max_logit_diff')):.1e}",
                _pct(_m(j, names.collapse("prediction_agreement")), 2),
                int(_v(j, names.collapse("map_rank"))),
            ]
        )
    accs = [_v(j, names.TEST_ACC) for j in jobs]
    single = accs[0]
    depths = ", ".join(str(r[0]) for r in rows[:-1]) + f" and {rows[-1][0]}" if len(rows) > 1 else str(rows[0][0])
    claim.measured = (
        f"test accuracy {', '.join(_pct(a) for a in accs)} for {depths} linear layers; "
        f"each stack equals its multiplied-out 784x10 map to {max(diffs):.1e} in the logits "
        f"and predicts the same digit on {_pct(min(agree))} of the test set"
    )
    spread = max(accs) - single
    holds = max(diffs) < 1e-3 and min(agree) >= 0.999 and spread <= 0.01 and 0.90 <= single <= 0.94
    claim.verdict = "holds" if holds else "does not hold"
    claim.details.append(
        (
            "table",
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
    extra = f" The ReLU network of the same shape: {_pct(relu_acc)}." if relu_acc else ""
    claim.details.append(
        (
            "text",
            "Verdict rule: logits within 1e-3 of the single map, the same prediction on "
            ">= 99.9 % of images, the deepest stack within 1 point of the single layer, and the "
            f"single layer in [90 %, 94 %]. Deepest minus single layer: {100 * spread:+.2f} points." + extra,
        )
    )
    claim.data = {"layers": [r[0] for r in rows], "accs": accs, "relu_acc": relu_acc}
    claim.details.append(("figure", "linear", "Test accuracy against depth, identity activations vs ReLU"))
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
                _pct(_m(j, names.TEST_ACC)),
                f"{_m(j, names.TEST_LOSS):.4f}",
                _pct(j["history"][names.VAL_ACC][0]),
                epochs or "not reached",
                f"{secs:.1f} s" if secs else "-",
                _pct(_m(j, names.attack_acc("pgd", 0.1))),
            ]
        )
        series[name] = j["history"]
    never = len(results["claim_activations"]["jobs"][0]["history"].get(names.VAL_ACC, [])) + 1
    order = sorted(reach, key=lambda n: reach[n] or never)
    claim.measured = f"epochs to {_pct(TARGET_VAL_ACC, 0)} validation accuracy: " + ", ".join(
        f"{n} {reach[n] or 'not reached'}" for n in order
    )
    sig, relu = reach.get("sigmoid") or never, reach.get("relu") or never
    claim.verdict = "holds" if relu < sig else ("holds only partly (a tie)" if relu == sig else "does not hold")
    claim.details.append(
        (
            "table",
            [
                "activation",
                "test acc",
                "test loss",
                "val acc after epoch 1",
                f"epochs to {_pct(TARGET_VAL_ACC, 0)} val",
                "training time to it",
                "PGD eps 0.1 acc",
            ],
            rows,
        )
    )
    claim.details.append(
        (
            "text",
            "Same network, optimiser (Adam, lr 1e-3), seed and batches; only the activation "
            "differs. Verdict rule: ReLU reaches the target in fewer epochs than sigmoid.",
        )
    )
    claim.details.append(("figure", "activations", "Validation accuracy and training loss per epoch"))
    claim.data = {"series": series}
    return claim


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
    jobs = sorted(results["claim_scaling"]["jobs"], key=_params)
    params = [_params(j) for j in jobs]
    errors = [1 - _v(j, names.TEST_ACC) for j in jobs]
    losses = [_m(j, names.TEST_LOSS) for j in jobs]
    a, b, r2 = power_law(params, errors)
    claim.measured = (
        f"test error = {a:.3g} x parameters^-{b:.3f} (R² = {r2:.2f}) from {params[0]:,} to "
        f"{params[-1]:,} parameters; test accuracy {_pct(1 - errors[0])} -> {_pct(1 - errors[-1])}"
    )
    claim.verdict = "holds" if b > 0 and errors[-1] < errors[0] else "does not hold"
    claim.details.append(
        (
            "table",
            ["hidden", "parameters", "test acc", "test error", "test loss", "PGD eps 0.1 acc"],
            [
                [
                    j["params"]["model.hidden"],
                    f"{p:,}",
                    _pct(1 - e),
                    _pct(e),
                    f"{loss:.4f}",
                    _pct(_m(j, names.attack_acc("pgd", 0.1))),
                ]
                for j, p, e, loss in zip(jobs, params, errors, losses, strict=False)
            ],
        )
    )
    claim.details.append(
        (
            "text",
            "Same recipe for every size (Adam, lr 1e-3, 8 epochs, best epoch by validation "
            "accuracy). Verdict rule: a positive power-law exponent and the largest model better "
            "than the smallest. Depth points are the last three rows (width 256).",
        )
    )
    claim.details.append(("figure", "scaling", "Test error and loss against parameters (log-log), power-law fit"))
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
                [_v(j, names.TEST_ACC) for j in jobs],
            )
    if not curves:
        return claim
    parts, rows = [], []
    for label, (ns, accs) in curves.items():
        parts.append(f"{label}: {_pct(accs[0], 1)} with {ns[0]:,} examples, {_pct(accs[-1], 1)} with {ns[-1]:,}")
        rows += [[label, f"{n:,}", _pct(a)] for n, a in zip(ns, accs, strict=False)]
    claim.measured = "; ".join(parts)
    mlp = curves.get("MLP") or next(iter(curves.values()))
    claim.verdict = "holds" if mlp[1][-1] - mlp[1][0] > 0.1 else "does not hold"
    claim.details.append(("table", ["model", "training examples", "test acc"], rows))
    claim.details.append(
        (
            "text",
            "Every size is trained for the same number of steps (a small subset is cycled), "
            "so only the number of distinct examples changes. Verdict rule: more than 10 points "
            "between the smallest and the full training set. CNN: `python -m pipeline.stages.train "
            "experiment=claim_samples_cnn`.",
        )
    )
    claim.details.append(("figure", "samples", "Test accuracy against the number of training examples"))
    claim.data = {"curves": curves}
    return claim


def filters_claim(results: dict) -> Claim:
    claim = Claim(
        "7", "Layer-1 filters detect simple things (edges, blobs); deeper layers respond to larger parts.", "claim_mlp"
    )
    from pipeline.claims.results import FIGURE_PRESETS

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
        claim.details.append(("image", f"results/{fig['path']}", f"{model} ({preset}, job {fig['job']}): {what}"))
    claim.details.append(("text", "CNN: `python -m pipeline.stages.train experiment=claim_cnn`."))
    return claim


BRITTLE = (
    names.ROBUST_CLEAN_ACC,
    names.attack_acc("fgsm", 0.1),
    names.attack_acc("pgd", 0.1),
    names.attack_acc("pgd", 0.3),
    names.MNIST_C_MEAN_ACC,
    names.MNIST_C_WORST_ACC,
    names.ood_auroc("fashion_mnist"),
)


def brittleness_claim(results: dict, main_robustness: dict | None) -> Claim:
    claim = Claim(
        "8", "Trained networks are brittle: small adversarial changes and distribution shift break them.", None
    )
    rows, pgd = [], []
    for preset, data in results.items():
        for j in data["jobs"]:
            if names.attack_acc("pgd", 0.1) not in j["metrics"]:
                continue
            pgd.append(j["metrics"][names.attack_acc("pgd", 0.1)] / max(j["metrics"][names.ROBUST_CLEAN_ACC], 1e-9))
            label = j["params"].get("model.name", "?")
            setting = " ".join(
                o
                for o in j["overrides"].split()
                if not o.startswith(("+experiment", "experiment=", "tracking.", "data.root"))
            )
            rows.append(
                [
                    preset,
                    f"{label} {setting}".strip(),
                    *[
                        f"{j['metrics'][k]:.3f}" if k.startswith("ood") else _pct(j["metrics"].get(k), 1)
                        for k in BRITTLE
                    ],
                ]
            )
    if main_robustness:
        r = main_robustness
        rows.insert(
            0,
            [
                "dvc repro (full profile)",
                "seed MLP",
                _pct(r["clean"]["acc"], 1),
                _pct(r["adversarial"].get("fgsm_eps0.1"), 1),
                _pct(r["adversarial"].get("pgd_eps0.1"), 1),
                _pct(r["adversarial"].get("pgd_eps0.3"), 1),
                _pct(r["mnist_c"]["mean_acc"], 1),
                _pct(r["mnist_c"]["worst_acc"], 1),
                f"{r['ood_auroc']['fashion_mnist']:.3f}",
            ],
        )
    if not rows:
        return claim
    claim.measured = (
        f"{len(rows)} models: under PGD-10 at eps 0.1 (a change of 26 grey levels per pixel) they keep "
        f"{_pct(min(pgd), 0)} to {_pct(max(pgd), 0)} of their clean accuracy"
        if pgd
        else "the default pipeline's model (see table)"
    )
    claim.verdict = (
        "holds"
        if pgd and max(pgd) < 0.5
        else ("holds for the default model" if not pgd else "does not hold for every model")
    )
    claim.details.append(
        (
            "table",
            [
                "preset",
                "model",
                "clean acc",
                "FGSM 0.1",
                "PGD-10 0.1",
                "PGD-10 0.3",
                "MNIST-C mean",
                "MNIST-C worst",
                "Fashion-MNIST AUROC",
            ],
            rows,
        )
    )
    claim.details.append(
        (
            "text",
            "Claim presets measure on 1,000 test images (robustness=claims); the first row is "
            "the DVC pipeline's full profile on all 10,000. Verdict rule: every model keeps less than "
            "half its clean accuracy under PGD at eps 0.1.",
        )
    )
    return claim


def optuna_summary(results: dict) -> Claim | None:
    if "optuna_mlp" not in results:
        return None
    jobs = results["optuna_mlp"]["jobs"]
    best = max(jobs, key=lambda j: _v(j, names.VAL_BEST_ACC))
    claim = Claim("S", "Hyperparameter search (Optuna TPE over lr, first-layer width, dropout).", "optuna_mlp")
    p = best["params"]
    claim.measured = (
        f"best of {len(jobs)} trials (chosen by validation accuracy): lr {float(p['optim.lr']):.2e}, "
        f"hidden {p['model.hidden']}, dropout {float(p['model.dropout']):.2f}: val "
        f"{_pct(_m(best, names.VAL_BEST_ACC))}, test {_pct(_m(best, names.TEST_ACC))}"
    )
    claim.verdict = "search result"
    claim.details.append(
        (
            "table",
            ["trial", "lr", "hidden", "dropout", "val acc", "test acc"],
            [
                [
                    j["job"],
                    f"{float(j['params']['optim.lr']):.2e}",
                    j["params"]["model.hidden"],
                    f"{float(j['params']['model.dropout']):.2f}",
                    _pct(_m(j, names.VAL_BEST_ACC)),
                    _pct(_m(j, names.TEST_ACC)),
                ]
                for j in jobs
            ],
        )
    )
    return claim


# The AutoAttack paper's table (Croce & Hein 2020), MNIST, L-inf eps 0.3: (method, clean, AutoAttack).
LITERATURE = (
    ("Madry et al. 2018, PGD adversarial training", 0.9853, 0.8850),
    ("Wong et al. 2020, fast FGSM with random start", 0.9850, 0.8293),
    ("Zhang et al. 2019, TRADES", 0.9948, 0.9276),
)
REMEDY_TARGET = {"autoattack": 0.829, "clean": 0.985, "train_seconds": 3600}


def load_remedy(results_dir: str | Path) -> dict | None:
    """reports/results/remedy.json, left by `python -m pipeline.stages.remedy RUN_DIR record`."""
    path = Path(results_dir) / "remedy.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _square_check(checks: dict) -> str:
    """The black-box check in words: Square alone against the white-box attacks together."""
    if "square_extra_fooled" not in checks:
        return "Square: AutoAttack not run on these images."
    verdict = (
        f"Square alone (black-box, 5,000 queries) leaves {_pct(checks['square_alone_acc'], 1)}, the white-box "
        f"attacks together {_pct(checks['white_box_acc'], 1)} - not stronger: {checks['square_not_stronger']}. "
        if "square_not_stronger" in checks
        else "Square alone: not run (part `square`). "
    )
    return verdict + (
        f"Run last inside AutoAttack, Square fooled {_pct(checks['square_extra_fooled'], 1)} more of the images "
        "the white-box attacks had left."
    )


def remedy_claim(remedy: dict | None) -> Claim | None:
    """The robust model beside Madry, Wong and TRADES, with its training time on this machine."""
    if not remedy:
        return None
    parts = remedy["parts"]
    claim = Claim(
        "R",
        "The remedy: adversarial training reaches the published robustness at eps 0.3 "
        f"(AutoAttack >= {_pct(REMEDY_TARGET['autoattack'], 1)}, clean >= "
        f"{_pct(REMEDY_TARGET['clean'], 1)}) with a training that fits in an hour on this CPU.",
        remedy["preset"],
    )
    clean, auto = parts.get("clean", {}), parts.get("autoattack_eps0.3", {})
    minutes = (remedy.get("train_seconds") or float("nan")) / 60
    if clean and auto:
        claim.measured = (
            f"AutoAttack {_pct(auto['acc'])} on the first {auto['images']:,} test images, clean "
            f"{_pct(clean['acc'])} on {clean['images']:,}, trained in {minutes:.0f} min"
        )
        ok = (
            auto["acc"] >= REMEDY_TARGET["autoattack"]
            and clean["acc"] >= REMEDY_TARGET["clean"]
            and minutes * 60 <= REMEDY_TARGET["train_seconds"]
        )
        claim.verdict = "holds" if ok else "does not hold"
        failed = [
            k
            for key, checks in remedy.items()
            if key.startswith("checks")
            for k, v in checks.items()
            if v is False and k != "passed"
        ]
        if failed:  # the figures stand or fall with these checks: say so beside the verdict
            claim.verdict += f" (gradient-masking check failed: {', '.join(failed)})"
    pgd03 = parts.get("pgd_eps0.3", {})
    rows = [[name, _pct(c), _pct(a), "", "(published)"] for name, c, a in LITERATURE]
    rows.append(
        [
            f"ours: `{remedy['preset']}`, {remedy['model']['arch']} {remedy['model'].get('channels')} "
            f"{remedy['adversarial']['method']}",
            _pct(clean.get("acc")),
            _pct(auto.get("acc")),
            _pct(pgd03.get("acc")),
            f"{minutes:.0f} min on this CPU",
        ]
    )
    claim.details.append(("table", ["method", "clean", "AutoAttack eps 0.3", "PGD-50x10 eps 0.3", "training"], rows))
    detail = []
    for eps in (0.1, 0.3):
        cells = [f"{eps:g}", _pct(clean.get("acc"))]
        for key in ("fgsm", "pgd", "autoattack"):
            part = parts.get(f"{key}_eps{eps:g}")
            cells.append(
                f"{_pct(part['acc'])} ({part['images']:,} images, {part['seconds'] / 60:.0f} min"
                + (f" summed over {part['shards']} shards)" if part.get("shards") else ")")
                if part
                else "not run"
            )
        detail.append(cells)
    claim.details.append(("table", ["eps", "clean", "FGSM", "PGD-50, 10 restarts", "AutoAttack standard"], detail))
    for key, checks in remedy.items():
        if key.startswith("checks"):
            sanity = parts.get(key.replace("checks", "sanity"), {})
            curve = ", ".join(f"{row['eps']:g}: {_pct(row['pgd'], 1)}" for row in sanity.get("eps_curve", []))
            strength = ", ".join(
                f"{row['steps']}x{row['restarts']}: {_pct(row['pgd'], 1)}" for row in sanity.get("strength", [])
            )
            claim.details.append(
                (
                    "text",
                    (
                        f"Gradient-masking checks ({sanity.get('images', '?')} images): "
                        f"accuracy against eps (PGD-20) {curve} - "
                        f"monotone: {checks['monotone_in_eps']}, near 0 at eps {checks['max_eps']:g}: "
                        f"{checks['near_zero_at_max_eps']}. More PGD steps x restarts "
                        f"at eps {sanity.get('eps', 0.3):g} "
                        f"({strength}) never help: {checks['stronger_attack_never_helps']}. " + _square_check(checks)
                    ),
                )
            )
    claim.details.append(
        (
            "text",
            "Reproduce: train with the command above, then `python -m pipeline.stages.remedy "
            "RUN_DIR <part>` for clean, fgsm, pgd, autoattack and sanity at --eps 0.1 and 0.3, and "
            "`... RUN_DIR record` (docs/robustness.md).",
        )
    )
    return claim


def all_claims(results: dict, main_robustness: dict | None = None, remedy: dict | None = None) -> list[Claim]:
    relu = None
    if "claim_mlp" in results:
        relu = statistics.fmean(_v(j, names.TEST_ACC) for j in results["claim_mlp"]["jobs"])
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
    ]
    search, robust = optuna_summary(results), remedy_claim(remedy)
    return claims + ([robust] if robust else []) + ([search] if search else [])
