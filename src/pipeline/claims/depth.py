"""Claim 12: one hidden layer can approximate any function, but only at impractical sizes; depth
gives exponentially growing capacity (claim_depth, and claim_scaling for depth against width).
The verdict rule is fixed here, before any number is read."""

from __future__ import annotations

import math

from pipeline.claims.model import Claim, Figure, Table, Text, metric, n_params, need, pct
from pipeline.common import metric_names as names

PRESET = "claim_depth"
# (a) holds if log2(smallest shallow width) grows with k at a slope of at least this (2^k: 1),
# while the net of 2 ReLUs per layer, 2k neurons, reaches the target at every k.
MIN_SLOPE = 0.75
REGION_METRICS = ("neurons", "parameters", "init", "trained", "trained_double_points", "log10_max_regions", "test_acc")


def slope(ks: list[int], widths: list[float]) -> float:
    """Least-squares slope of log2(width) on k."""
    logs = [math.log2(w) for w in widths]
    k_mean, l_mean = sum(ks) / len(ks), sum(logs) / len(logs)
    return sum((k - k_mean) * (y - l_mean) for k, y in zip(ks, logs, strict=True)) / sum((k - k_mean) ** 2 for k in ks)


def sawtooth_verdict(
    ks: list[int], widths: list[float | None], deep_rmse: list[float], target: float
) -> tuple[bool, str]:
    """Holds if the shallow width grows about like 2^k and the 2k-neuron deep net reaches the target at every k.
    A width the search could not find (None) counts as growing: the fit needed more than it tried."""
    found = [(k, w) for k, w in zip(ks, widths, strict=True) if w]
    if len(found) < 2:
        return False, "too few widths found to measure a growth"
    b = slope([k for k, _ in found], [w for _, w in found])
    deep_ok = all(r <= target for r in deep_rmse)
    holds = (b >= MIN_SLOPE or len(found) < len(ks)) and deep_ok
    text = (
        f"the smallest one-hidden-layer width grows as 2^({b:.2f} k) over k = {found[0][0]}..{found[-1][0]} "
        f"(from {found[0][1]:,.0f} to {found[-1][1]:,.0f} neurons; {2 ** ks[0]} to {2 ** ks[-1]} pieces), "
        f"while 2k neurons in k layers compute the sawtooth {'exactly at every k' if deep_ok else 'not at every k'}"
    )
    return holds, text


def _sawtooth(job: dict) -> dict:
    ks = sorted(int(key.split("/")[1][1:]) for key in job["metrics"] if key.endswith("/pieces"))
    get = lambda k, name: metric(job, f"sawtooth/k{k}/{name}")  # noqa: E731
    widths = [get(k, "shallow_width") for k in ks]
    return {
        "ks": ks,
        "widths": [None if w is None or math.isnan(w) else w for w in widths],
        "deep_rmse": [need(job, f"sawtooth/k{k}/deep_rmse") for k in ks],
        "trained_rmse": [need(job, f"sawtooth/k{k}/deep_trained_rmse") for k in ks],
        "shallow_rmse": [need(job, f"sawtooth/k{k}/shallow_rmse") for k in ks],
        "target": float(job["params"].get("depth.sawtooth.target_rmse", 0.05)),
    }


def _regions(job: dict) -> list[dict]:
    depths = sorted(int(key.split("/")[1][5:]) for key in job["metrics"] if key.endswith("/neurons"))
    return [
        {
            "depth": d,
            **{name: need(job, f"regions/depth{d}/{name}") for name in REGION_METRICS},
        }
        for d in depths
    ]


def _net(job: dict) -> str:
    return f"{job['params']['model.hidden']}: {n_params(job):,} parameters, {pct(1 - need(job, names.TEST_ACC))}"


def depth_against_width(results: dict) -> list[list]:
    """(b) From the scaling sweep: each net of several hidden layers beside the one-layer net
    nearest to it in parameters."""
    if "claim_scaling" not in results:
        return []
    jobs = results["claim_scaling"]["jobs"]
    depth = {id(j): j["params"]["model.hidden"].count(",") + 1 for j in jobs}
    shallow = [j for j in jobs if depth[id(j)] == 1]
    rows = []
    for j in jobs:
        if depth[id(j)] == 1 or not shallow:
            continue
        near = min(shallow, key=lambda s: abs(math.log(n_params(s) / n_params(j))))
        rows.append([_net(j), _net(near)])
    return rows


def depth_claim(results: dict) -> Claim:
    claim = Claim(
        "12",
        "One hidden layer can approximate any function, but only at impractical sizes; depth gives "
        "exponentially growing capacity.",
        PRESET,
        stage="depth",
    )
    if PRESET not in results:
        return claim
    jobs = {j["params"]["model.name"]: j for j in results[PRESET]["jobs"]}
    if "sawtooth" not in jobs:
        return claim
    saw = _sawtooth(jobs["sawtooth"])
    holds, text = sawtooth_verdict(saw["ks"], saw["widths"], saw["deep_rmse"], saw["target"])
    claim.verdict = "holds" if holds else "does not hold"
    claim.measured = text
    trained_fails = sum(r > saw["target"] for r in saw["trained_rmse"])
    claim.measured += (
        f"; the same deep shape trained by Adam from a random start misses the target at {trained_fails} of "
        f"{len(saw['ks'])} k (the capacity is there; gradient descent does not find it)"
    )
    claim.details.append(
        Table(
            [
                "k",
                "pieces",
                "smallest width, 1 hidden layer (RMSE)",
                "deep: 2 ReLUs x k layers, built (RMSE)",
                "deep shape, trained (best RMSE)",
            ],
            [
                [
                    k,
                    2**k,
                    f"{w:,.0f} ({r:.3f})" if w else f"not found ({r:.3f})",
                    f"{2 * k} neurons ({d:.1e})",
                    f"{t:.3f}",
                ]
                for k, w, r, d, t in zip(
                    saw["ks"], saw["widths"], saw["shallow_rmse"], saw["deep_rmse"], saw["trained_rmse"], strict=True
                )
            ],
        )
    )
    claim.details.append(
        Text(
            "(a) Telgarsky's sawtooth: the tent map composed k times on [0, 1], fitted on 2,048 evenly spaced "
            f"points. The one-hidden-layer width is the smallest (found by doubling, then bisection to about "
            f"12 %) whose fit reaches RMSE {saw['target']} (the sawtooth's own spread is 0.289): ReLU kinks "
            "placed at random in [0, 1], the output layer solved by least squares, then full-batch Adam. Verdict "
            f"rule: holds if log2 of that width grows with k at a slope of at least {MIN_SLOPE} (2^k is a slope "
            "of 1) while 2 ReLUs in each of k hidden layers reach the target at every k."
        )
    )
    regions = _regions(jobs["regions"]) if "regions" in jobs else []
    if regions:
        counts = ", ".join(f"{r['trained']:.0f}" for r in regions)
        depths = ", ".join(str(r["depth"]) for r in regions)
        claim.measured += (
            f"; in trained MNIST nets of {regions[0]['neurons']:.0f} neurons, depth does not multiply the linear "
            f"regions: {counts} along a segment between test digits at depths {depths}, against bounds up to "
            f"10^{regions[-1]['log10_max_regions']:.0f}"
        )
        claim.details.append(
            Table(
                [
                    "hidden layers",
                    "neurons (parameters)",
                    "regions at initialisation",
                    "regions after training (at 2x samples)",
                    "most possible",
                    "test accuracy",
                ],
                [
                    [
                        r["depth"],
                        f"{r['neurons']:.0f} ({r['parameters']:,.0f})",
                        f"{r['init']:.1f}",
                        f"{r['trained']:.1f} ({r['trained_double_points']:.1f})",
                        f"10^{r['log10_max_regions']:.1f}",
                        pct(r["test_acc"]),
                    ]
                    for r in regions
                ],
            )
        )
        claim.details.append(
            Text(
                "(c) Linear regions (patterns of active neurons) counted along the straight segment between "
                "test images 2i and 2i + 1, averaged over the segments, at initialisation and after training "
                "on the networks' split; every segment is counted again at twice the samples, and the two counts "
                "agree when no boundary is missed. The most possible is the product over layers of (width + 1)."
            )
        )
    pairs = depth_against_width(results)
    if pairs:
        epochs = results["claim_scaling"]["jobs"][0]["params"].get("trainer.max_epochs", "?")
        header = ["several hidden layers (claim_scaling)", "one hidden layer, nearest in size"]
        claim.details.append(Table(header, pairs))
        claim.details.append(
            Text(
                "(b) Depth against width on MNIST, at about equal parameter counts, from the scaling sweep (the same "
                f"training for all, {epochs} epochs): one hidden layer is practical there, within a few tenths of a "
                "point of the deeper nets."
            )
        )
    caption = "Sawtooth: the width one hidden layer needs against k; MNIST nets: linear regions by depth"
    claim.details.append(Figure("depth", caption))
    claim.data = {"sawtooth": saw, "regions": regions}
    return claim
