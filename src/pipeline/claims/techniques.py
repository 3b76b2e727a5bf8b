"""Claim 13: better techniques made depth trainable: weight initialisation, batch normalisation,
dropout (claim_techniques: a deep MLP, plain SGD, a factorial sweep). The verdict rules are fixed
here, before any number is read."""

from __future__ import annotations

import math
import statistics

from pipeline.claims.model import Claim, Figure, Table, Text, metric, need, pct
from pipeline.common import metric_names as names

PRESET = "claim_techniques"
TARGET_VAL_ACC = 0.97
# Stalled: the first epoch's mean training loss is within this of ln 10, a uniform guess's loss.
STALL_MARGIN = 0.05
INIT_LABELS = {"normal": "N(0, 0.01²)", "glorot": "Glorot", "he": "He"}


def _flag(value) -> bool:
    return str(value).lower() == "true"


def cell(job: dict) -> tuple[str, bool, bool, float]:
    """(init, batch norm, dropout on, learning rate) of a job."""
    p = job["params"]
    return p["model.init"], _flag(p["model.batch_norm"]), float(p["model.dropout"]) > 0, float(p["optim.lr"])


def epochs_to_target(history: dict, target: float = TARGET_VAL_ACC) -> int | None:
    """The first epoch whose validation accuracy reaches target; None if none does."""
    return next((i for i, acc in enumerate(history.get(names.VAL_ACC, []), start=1) if acc >= target), None)


def stalled(history: dict) -> bool:
    """The first epoch's mean training loss is about ln 10: the network learned nothing for an epoch."""
    losses = history.get(names.TRAIN_LOSS, [])
    return bool(losses) and abs(losses[0] - math.log(10)) <= STALL_MARGIN


def _never(epochs: int | None) -> float:
    return math.inf if epochs is None else epochs


def init_verdict(stalls: dict[str, bool], reaches: dict[str, int | None]) -> bool:
    """Holds if N(0, 0.01²) stalls while Glorot and He reach the target (no batch norm, no dropout,
    the base rate)."""
    return stalls["normal"] and reaches["glorot"] is not None and reaches["he"] is not None


Epochs = dict[str, int | None]  # epochs to the target by initialisation; None: never


def batch_norm_verdict(plain: Epochs, normed: Epochs, fast: Epochs) -> bool:
    """Holds if, for Glorot and He (no dropout), batch norm reaches the target in fewer epochs at the
    base rate, and still reaches it at 10x the rate. `plain`/`normed`: epochs to target at the base
    rate without/with batch norm; `fast`: with batch norm at 10x; None = never."""
    inits = ("glorot", "he")
    return all(_never(normed[i]) < _never(plain[i]) for i in inits) and all(fast[i] is not None for i in inits)


def dropout_verdict(pairs: list[tuple[float, float]]) -> bool:
    """Holds if dropout lowers the mean test error over the cells where both nets trained:
    pairs of (test error without dropout, with dropout)."""
    return bool(pairs) and statistics.fmean(b - a for a, b in pairs) < 0


def techniques_claim(results: dict) -> Claim:
    claim = Claim(
        "13",
        "Better techniques made depth trainable: weight initialisation, batch normalisation, dropout.",
        PRESET,
    )
    if PRESET not in results:
        return claim
    jobs = {cell(j): j for j in results[PRESET]["jobs"]}
    if not jobs:
        return claim
    rates = sorted({key[3] for key in jobs})
    base, fast_rate = rates[0], rates[-1]
    rate = max(float(j["params"]["model.dropout"]) for j in results[PRESET]["jobs"])  # the dropout rate swept
    reach = {key: epochs_to_target(j["history"]) for key, j in jobs.items()}
    error = {key: 1 - need(j, names.TEST_ACC) for key, j in jobs.items()}
    needed = [(i, False, False, base) for i in INIT_LABELS] + [
        (i, True, False, lr) for i in ("glorot", "he") for lr in (base, fast_rate)
    ]
    if len(rates) < 2 or not all(key in jobs for key in needed):
        claim.measured = f"the sweep is incomplete ({len(jobs)} jobs): rerun the preset for the verdict"
    else:
        _verdict(claim, jobs, reach, error, base, fast_rate, rate)
    _details(claim, jobs, reach, error, base, fast_rate, rate, results)
    return claim


def _verdict(claim: Claim, jobs: dict, reach: dict, error: dict, base: float, fast_rate: float, rate: float) -> None:
    """The three rules on a complete factorial, into the claim's verdict and measured text."""
    get = lambda i, bn, do, lr: reach.get((i, bn, do, lr))  # noqa: E731
    stalls = {i: stalled(jobs[(i, False, False, base)]["history"]) for i in INIT_LABELS}
    base_reach = {i: get(i, False, False, base) for i in INIT_LABELS}
    init_ok = init_verdict(stalls, base_reach)
    plain = {i: get(i, False, False, base) for i in ("glorot", "he")}
    normed = {i: get(i, True, False, base) for i in ("glorot", "he")}
    fast = {i: get(i, True, False, fast_rate) for i in ("glorot", "he")}
    bn_ok = batch_norm_verdict(plain, normed, fast)
    pairs = [
        (error[key], error[(key[0], key[1], True, key[3])])
        for key in jobs
        if not key[2]
        and (key[0], key[1], True, key[3]) in jobs
        and reach[key] is not None
        and reach[(key[0], key[1], True, key[3])] is not None
    ]
    dropout_ok = dropout_verdict(pairs)
    held = [name for name, ok in (("initialisation", init_ok), ("batch norm", bn_ok), ("dropout", dropout_ok)) if ok]
    claim.verdict = "holds" if len(held) == 3 else f"holds for {' and '.join(held)} only" if held else "does not hold"

    def epochs_text(e: int | None) -> str:
        return "never" if e is None else f"epoch {e}"

    unfit = [i for i in ("glorot", "he") if _diverged(jobs.get((i, False, False, fast_rate)))]
    first_loss = jobs[("normal", False, False, base)]["history"][names.TRAIN_LOSS][0]
    dropout_delta = statistics.fmean(b - a for a, b in pairs) if pairs else float("nan")
    claim.measured = (
        f"initialisation: N(0, 0.01²) {'stalls' if stalls['normal'] else 'does not stall'} (first-epoch loss "
        f"{first_loss:.3f}, ln 10 = {math.log(10):.3f}; {epochs_text(base_reach['normal'])} to "
        f"{pct(TARGET_VAL_ACC, 0)}), Glorot {epochs_text(base_reach['glorot'])}, He {epochs_text(base_reach['he'])}; "
        f"batch norm: {pct(TARGET_VAL_ACC, 0)} at {epochs_text(normed['glorot'])} / {epochs_text(normed['he'])} "
        f"(Glorot / He) against {epochs_text(plain['glorot'])} / {epochs_text(plain['he'])} without, and at "
        f"{fast_rate:g} ({fast_rate / base:g}x) {epochs_text(fast['glorot'])} / {epochs_text(fast['he'])}"
        + (f" where without it {' and '.join(INIT_LABELS[i] for i in unfit)} diverged" if unfit else "")
        + f"; dropout {rate:g} changes test error by {100 * dropout_delta:+.2f} points on average over {len(pairs)} "
        f"cells where the nets with and without it both reached the target"
    )


def _details(
    claim: Claim, jobs: dict, reach: dict, error: dict, base: float, fast_rate: float, rate: float, results: dict
) -> None:
    """The table of every job, the notes and the figure: drawn from whatever jobs the sweep has."""
    rows = []
    for key in sorted(jobs, key=lambda k: (k[3], list(INIT_LABELS).index(k[0]), k[1], k[2])):
        j, (init, bn, do, lr) = jobs[key], key
        norms = _layer_norms(j)
        rows.append(
            [
                INIT_LABELS.get(init, init),
                "on" if bn else "off",
                f"{rate:g}" if do else "off",
                f"{lr:g}",
                f"{norms[0]:.1e} / {norms[-1]:.1e}" if norms else "n/a",
                _loss_text(j["history"][names.TRAIN_LOSS][0]),
                _outcome(j, reach[key]),
                pct(error[key]),
            ]
        )
    claim.details.append(
        Table(
            [
                "init",
                "batch norm",
                "dropout",
                "learning rate",
                "gradient norm at init, layer 1 / output",
                "epoch 1 loss",
                f"epochs to {pct(TARGET_VAL_ACC, 0)} val",
                "test error",
            ],
            rows,
        )
    )
    epochs = results[PRESET]["jobs"][0]["params"].get("trainer.max_epochs", "?")
    claim.details.append(
        Text(
            "A ReLU MLP with 6 hidden layers of 256, plain SGD (no momentum, no schedule, no weight decay), batch "
            f"128, {epochs} epochs, the networks' split. N(0, 0.01²) is the fixed small Gaussian of before 2010, "
            "Glorot & Bengio's is their normalised uniform, He et al.'s is N(0, 2 / fan-in); batch norm comes "
            "before each hidden ReLU, dropout after it. The gradient norms are of the untrained net's weight "
            "gradients on 512 training images. A job whose loss stopped being finite ended there (diverged). "
            f"Verdict rules: initialisation holds if N(0, 0.01²) stalls (first-epoch loss within {STALL_MARGIN} of "
            f"ln 10) while Glorot and He reach {pct(TARGET_VAL_ACC, 0)} validation accuracy (no batch norm or "
            "dropout, the base rate); batch norm holds if, for Glorot and He without dropout, it reaches the "
            "target in fewer epochs at the base rate and still reaches it at 10x; dropout holds if it lowers "
            "the mean test error over the cells where the nets with and without it both reached the target."
        )
    )
    claim.details.append(
        Figure("techniques", "Gradient norm per layer at initialisation, and validation accuracy per epoch")
    )
    claim.data = {
        "gradients": {
            INIT_LABELS[i] + (" + BN" if bn else ""): _layer_norms(jobs[(i, bn, False, base)])
            for i in INIT_LABELS
            for bn in (False, True)
            if (i, bn, False, base) in jobs
        },
        "curves": {
            f"{INIT_LABELS[i]}{' + BN' if bn else ''}, lr {lr:g}": jobs[(i, bn, False, lr)]["history"].get(
                names.VAL_ACC, []
            )
            for i in ("normal", "he")
            for bn in (False, True)
            for lr in (base, fast_rate)
            if (i, bn, False, lr) in jobs
        },
        "target": TARGET_VAL_ACC,
    }


def _loss_text(loss: float) -> str:
    return f"{loss:.3f}" if abs(loss) < 1000 else f"{loss:.1e}"  # a diverging run's loss runs to 10^17


def _diverged(job: dict | None) -> bool:
    return job is not None and metric(job, names.TRAIN_DIVERGED_STEP) is not None


def _outcome(job: dict, epochs: int | None) -> str:
    step = metric(job, names.TRAIN_DIVERGED_STEP)
    if step is not None:
        return f"diverged at step {step:,.0f}"
    return "never" if epochs is None else str(epochs)


def _layer_norms(job: dict) -> list[float]:
    out, n = [], 1
    while (value := metric(job, names.init_gradient(f"layer{n}"))) is not None:
        out.append(value)
        n += 1
    return out
