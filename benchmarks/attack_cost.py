"""Robustness cost: PGD-10 (eps 0.1, random start) images/s over the test set, for the MLP and the CNN.

ours:     pipeline.robustness.attacks.accuracy_under_attack with functools.partial(pgd, eps=0.1, steps=10),
          batches of 1,000 (robustness.batch_size); it also keeps, per example, the best restart.
baseline: a plain hand-written PGD loop in torch (random start, 10 signed-gradient steps, projection,
          then one forward pass to count the correct predictions), same model, same batches.
Models: the trained checkpoint when one exists (outputs/main for the MLP, outputs/runs/cnn for the
CNN), else random weights (the speed is the same). The CNN uses channels_last as conf/model/cnn.yaml
configures it (and `load_checkpoint` returns it so, for the robustness stage); one more row shows
the cost of attacking the same CNN in the NCHW layout, the measurement behind that choice.
"""

from __future__ import annotations

import copy
import functools
import time

import torch
import torch.nn.functional as F

from benchmarks.common import PROJECT, data_root, interleaved, median, row

EPS, STEPS, BATCH = 0.1, 10, 1000
CHECKPOINTS = [
    PROJECT / "outputs" / "main" / "checkpoints" / "best.ckpt",
    PROJECT / "outputs" / "runs" / "cnn" / "checkpoints" / "best.ckpt",
]


def plain_pgd(model, x, y, eps: float, steps: int, step_size: float) -> torch.Tensor:
    """The textbook loop (Madry et al.), nothing else."""
    lo, hi = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    x_adv = torch.min(torch.max(x + eps * (2 * torch.rand_like(x) - 1), lo), hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), lo), hi)
    return x_adv


def plain_accuracy(model, x, y) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(y), BATCH):
        xb, yb = x[i : i + BATCH], y[i : i + BATCH]
        x_adv = plain_pgd(model, xb, yb, EPS, STEPS, 2.5 * EPS / STEPS)
        with torch.no_grad():
            correct += int((model(x_adv).argmax(1) == yb).sum())
    return correct / len(y)


def load_model(arch: str):
    """(model, where it came from): a trained checkpoint of this architecture if there is one."""
    from pipeline.config.settings import compose
    from pipeline.nn.builders import build_model, load_checkpoint

    for path in CHECKPOINTS:
        if path.is_file():
            try:
                blob = torch.load(path, map_location="cpu", weights_only=True)
                if blob["hyper_parameters"]["model_cfg"]["arch"] == arch:
                    return load_checkpoint(path), str(path.relative_to(PROJECT))
            except Exception:  # being rewritten by a training right now, or foreign: use random weights
                pass
    torch.manual_seed(0)
    return build_model(compose([f"model={arch}"]).model).eval(), "random weights"


def run(quick: bool = False, repeats: int = 5, **_) -> list[dict]:
    from pipeline.config.settings import compose
    from pipeline.data.mnist import load_split
    from pipeline.nn.images import to_model_input
    from pipeline.robustness.attacks import accuracy_under_attack, pgd

    images, labels = load_split(data_root(), "test")
    # images/s does not depend on how many: the CNN (about 100 img/s on 2 cores) gets a slice
    sizes = {"mlp": 500, "cnn": 100} if quick else {"mlp": len(labels), "cnn": 1000}
    attack = functools.partial(pgd, eps=EPS, steps=STEPS)
    rows = []
    for arch in ("mlp", "cnn"):
        n = sizes[arch]
        x, y = to_model_input(images[:n]), labels[:n]
        model, source = load_model(arch)
        nchw = None
        if compose([f"model={arch}"]).model.get("channels_last"):
            model = model.to(memory_format=torch.channels_last)
            nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
        acc = {}

        def throughput(key, fn, acc=acc, n=n):
            def measure() -> float:
                start = time.perf_counter()
                acc[key] = fn()
                return n / (time.perf_counter() - start)

            return measure

        variants = {
            "ours": throughput(
                "ours", lambda model=model, x=x, y=y: accuracy_under_attack(model, x, y, attack, batch_size=BATCH)
            ),
            "plain": throughput("plain", lambda model=model, x=x, y=y: plain_accuracy(model, x, y)),
        }
        if nchw is not None:
            variants["nchw"] = throughput(
                "nchw", lambda nchw=nchw, x=x, y=y: accuracy_under_attack(nchw, x, y, attack, batch_size=BATCH)
            )
        got = interleaved(variants, repeats)
        rows.append(
            row(
                "attack",
                f"{arch.upper()} PGD-10 eps {EPS} vs plain PGD loop",
                median(got["ours"]),
                median(got["plain"]),
                "img/s",
                (">=", 0.9, "ratio"),
                note=f"{n} test images, {source}; robust acc {acc['ours']:.3f} vs {acc['plain']:.3f}",
                robust_acc_ours=acc["ours"],
                robust_acc_plain=acc["plain"],
                # different random starts, so not identical; the same to within a point or two
                similar_accuracy=abs(acc["ours"] - acc["plain"]) <= 0.02 + 1 / n,
                samples_ours=got["ours"],
                samples_plain=got["plain"],
            )
        )
        if nchw is not None:
            rows.append(
                row(
                    "attack",
                    f"{arch.upper()} PGD-10, channels_last vs NCHW",
                    median(got["ours"]),
                    median(got["nchw"]),
                    "img/s",
                    (">=", 1.0, "ratio"),
                    note="same weights; the robustness stage attacks the channels_last model",
                    samples_ours=got["ours"],
                    samples_nchw=got["nchw"],
                )
            )
    return rows
