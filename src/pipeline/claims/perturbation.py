"""Claim 15: adversarial inputs are often imperceptible (claim_perturbation: the smallest change that
flips each image, on the MLP, the CNN and the robust model). The verdict rule is fixed here, before
any number is read."""

from __future__ import annotations

from pipeline.claims.model import Claim, Figure, Table, Text, metric, need, pct
from pipeline.common import metric_names as names

PRESET = "claim_perturbation"
# "Often imperceptible" holds for a model if at least this share of the test images it classifies
# correctly flips with an L-inf change of at most perturbation.eps (0.1, a tenth of the pixel range).
MIN_SHARE = 0.5
LABELS = {"mlp": "MLP", "cnn": "CNN", "robust": "robust model"}
SIZES = ("l2", "linf_deepfool", "linf_pgd", "linf")


def imperceptible_verdict(share_within_eps: float) -> bool:
    """One model: the share of its correctly classified images fooled within L-inf eps."""
    return share_within_eps >= MIN_SHARE


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _model(job: dict) -> dict:
    p = job["params"]
    key = "perturbation"
    out = {
        "model": p["perturbation.model"],
        "source": p.get("perturbation.source", ""),
        "version": p.get("perturbation.model_version"),
        "eps": float(p["perturbation.eps"]),
        "visible_eps": float(p["perturbation.visible_eps"]),
        "images": int(p["perturbation.images"]),
        "pgd_steps": p.get("perturbation.pgd_steps", "?"),
        "clean_acc": need(job, f"{key}/clean_acc"),
        "within_eps": need(job, f"{key}/linf/within_eps"),
        "within_visible_eps": need(job, f"{key}/linf/within_visible_eps"),
        "seconds": metric(job, names.JOB_SECONDS),
        **{f"{s}_median": need(job, f"{key}/{s}/median") for s in SIZES},
    }
    out["artifact"] = job.get("artifact") or {}
    return out


def _size(v: float) -> str:
    # An image no attack flipped has size inf, which MLflow stores as the largest float.
    return "not found" if v > 1e300 else f"{v:.3f}"


def perturbation_claim(results: dict) -> Claim:
    claim = Claim("15", "Adversarial inputs are often imperceptible to humans.", PRESET, stage="perturbation")
    if PRESET not in results or not results[PRESET]["jobs"]:
        return claim
    order = list(LABELS)
    models = sorted(
        (_model(j) for j in results[PRESET]["jobs"]),
        key=lambda m: order.index(m["model"]) if m["model"] in order else len(order),
    )
    held = [m for m in models if imperceptible_verdict(m["within_eps"])]
    eps, visible = models[0]["eps"], models[0]["visible_eps"]
    if len(held) == len(models):
        claim.verdict = "holds"
    elif held:
        claim.verdict = f"holds for the {' and the '.join(_label(m['model']) for m in held)} only"
    else:
        claim.verdict = "does not hold"
    claim.measured = "; ".join(
        f"the {_label(m['model'])}: median smallest change L2 {_size(m['l2_median'])}, L-inf "
        f"{_size(m['linf_median'])}, {pct(m['within_eps'], 1)} fooled within L-inf {eps:g}"
        for m in models
    )
    rows = [
        [
            _label(m["model"]) + (f" (v{m['version']})" if m["version"] else ""),
            pct(m["clean_acc"], 1),
            _size(m["l2_median"]),
            _size(m["linf_deepfool_median"]),
            _size(m["linf_pgd_median"]),
            _size(m["linf_median"]),
            pct(m["within_eps"], 1),
            pct(m["within_visible_eps"], 1),
            "yes" if imperceptible_verdict(m["within_eps"]) else "no",
            f"{m['seconds']:.0f} s" if m["seconds"] is not None else "",
        ]
        for m in models
    ]
    claim.details.append(
        Table(
            [
                "model",
                "clean accuracy",
                "median L2 (DeepFool)",
                "median L-inf (DeepFool)",
                "median L-inf (PGD grid)",
                "median L-inf (smaller)",
                f"fooled within L-inf {eps:g}",
                f"fooled within L-inf {visible:g}",
                "often imperceptible",
                "time",
            ],
            rows,
        )
    )
    claim.details.append(
        Text(
            f"On the first {models[0]['images']:,} test images, per image the model classifies correctly: the "
            "smallest change that flips its label, in pixel units (pixels in [0, 1]; an L-inf change of 0.1 moves "
            "no pixel by more than a tenth of black-to-white). DeepFool (Moosavi-Dezfooli et al. 2016; ours, "
            "checked against the Adversarial Robustness Toolbox's in the tests) walks to the nearest linearised "
            f"decision boundary in L2 or in L-inf; PGD-{models[0]['pgd_steps']} at each radius of a grid gives a "
            "second L-inf bound. "
            "Each is an adversarial example found, so each size is an upper bound on the true minimum, and the "
            'smaller one is kept. Verdict rule: "often imperceptible" holds for a model if at least '
            f"{100 * MIN_SHARE:.0f} % of those images flip within L-inf {eps:g}. At L-inf {visible:g}, the "
            "radius the robustness papers defend on MNIST, the change is plainly visible: grey blocks over the "
            "black background in the last column of the example grid. A small norm is no proof of an invisible "
            "change either: Sharif et al. 2018 found changes within the thresholds of earlier papers that "
            "people saw, and read as other digits."
        )
    )
    loose = [m for m in models if m["linf_deepfool_median"] > 1.2 * m["linf_pgd_median"]]
    if loose:
        claim.details.append(
            Text(
                "Where the two L-inf bounds part, DeepFool's linear steps overshoot ("
                + "; ".join(
                    f"the {_label(m['model'])}'s median {_size(m['linf_deepfool_median'])} against PGD's "
                    f"{_size(m['linf_pgd_median'])}"
                    for m in loose
                )
                + "): the further a model is from linear near the data, as adversarial training leaves it, "
                "the poorer DeepFool's guide and the more an iterative attack on the loss finds."
            )
        )
    claim.details.append(Figure("perturbation", "Share of images fooled against the size of the change"))
    claim.details.append(
        Figure("perturbation_examples", "Originals, the smallest changes found, and PGD at the papers' radius")
    )
    claim.data = {"models": models, "eps": eps, "visible_eps": visible}
    return claim
