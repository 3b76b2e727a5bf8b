"""The adversarially trained model measured as the papers measure theirs, in parts that can
run side by side, then recorded once.

    python -m pipeline.stages.remedy RUN_DIR clean
    python -m pipeline.stages.remedy RUN_DIR fgsm --eps 0.3
    python -m pipeline.stages.remedy RUN_DIR pgd --eps 0.3          # PGD-50, 10 restarts, all 10,000 images
    python -m pipeline.stages.remedy RUN_DIR autoattack --eps 0.3   # AutoAttack standard, first 1,000 images
    python -m pipeline.stages.remedy RUN_DIR sanity --eps 0.3       # gradient-masking checks, first 1,000 images
    python -m pipeline.stages.remedy RUN_DIR square --eps 0.3       # Square alone (black-box), first 1,000 images
    python -m pipeline.stages.remedy RUN_DIR record --preset robust_pgd

Each part writes RUN_DIR/remedy/<part>[_eps<eps>].json (its number, image count and
seconds). `record` gathers them into RUN_DIR/remedy.json and reports/results/remedy.json
(the report's "remedy" section) and logs them into the model's MLflow run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

PARTS = ("clean", "fgsm", "pgd", "autoattack", "square", "sanity", "record")
# Parts measured on the first 1,000 test images (AutoAttack's convention); the others on all 10,000.
FIRST_THOUSAND = ("autoattack", "square", "sanity")
TEST_IMAGES = 10_000


def _write_json(path: Path, data: dict) -> Path:
    """Written whole or not at all: a killed part never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _load(run_dir: Path, data_root: str, n: int, start: int = 0):
    from pipeline.data.mnist import load_split
    from pipeline.nn.builders import load_checkpoint
    from pipeline.tracking import run_ref

    ref = run_ref.read(run_dir)
    model = load_checkpoint(ref.get("best_checkpoint") or run_dir / "checkpoints" / "best.ckpt")
    images, labels = load_split(data_root, "test")
    # The first n test images (the AutoAttack papers' convention, the same for every model),
    # or a shard [start, start + n) of them so that one measurement can run in several processes.
    images, labels = images[start : start + n], labels[start : start + n]
    return model, images.unsqueeze(1).float().div(255), labels


def compute_part(part: str, model, x, y, eps: float, batch_size: int = 1000) -> dict:
    """One measurement as plain data: {value(s), images, seconds}."""
    from pipeline.robustness import literature
    from pipeline.robustness.attacks import accuracy_under_attack, fgsm
    from pipeline.robustness.autoattack import autoattack_by_attack

    started = time.perf_counter()
    if part == "clean":
        result: dict[str, Any] = {"acc": accuracy_under_attack(model, x, y, None, batch_size=batch_size)}
    elif part == "fgsm":
        result = {"acc": accuracy_under_attack(model, x, y, lambda m, a, b: fgsm(m, a, b, eps), batch_size=batch_size)}
    elif part == "pgd":
        result = {
            "acc": literature.pgd_accuracy(model, x, y, eps, batch_size=batch_size),
            "steps": literature.PGD_STEPS,
            "restarts": literature.PGD_RESTARTS,
            "step_size": literature.PGD_STEP_SIZE,
        }
    elif part == "autoattack":
        by_attack = autoattack_by_attack(model, x, y, eps, device="cpu", version="standard", batch_size=batch_size)
        result = {"acc": by_attack["final"], "by_attack": by_attack, "version": "standard"}
    elif part == "square":  # AutoAttack's Square (5,000 queries) alone, for the black-box check
        alone = autoattack_by_attack(model, x, y, eps, device="cpu", version="custom", attacks=["square"])
        result = {"acc": alone["final"], "queries": 5000}
    elif part == "sanity":
        result = {
            "eps_curve": literature.eps_curve(model, x, y, batch_size=batch_size),
            "strength": literature.attack_strength_table(model, x, y, eps, batch_size=batch_size),
        }
    else:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    return {
        **result,
        "eps": eps if part != "clean" else 0.0,
        "images": len(y),
        "seconds": round(time.perf_counter() - started, 1),
    }


def part_path(run_dir: Path, part: str, eps: float, shard: tuple[int, int] | None = None) -> Path:
    name = part if part == "clean" else f"{part}_eps{eps:g}"
    return run_dir / "remedy" / (f"{name}@{shard[0]}-{shard[1]}.json" if shard else f"{name}.json")


def merge_shards(shards: list[dict]) -> dict:
    """One result from shards over disjoint images: accuracies weighted by image count."""
    total = sum(s["images"] for s in shards)
    merged = {
        **shards[0],
        "images": total,
        "seconds": round(sum(s["seconds"] for s in shards), 1),
        "shards": len(shards),
        "acc": sum(s["acc"] * s["images"] for s in shards) / total,
    }
    if "by_attack" in shards[0]:
        merged["by_attack"] = {
            k: sum(s["by_attack"][k] * s["images"] for s in shards) / total for k in shards[0]["by_attack"]
        }
    return merged


def gather(run_dir: Path) -> dict:
    """Every finished part (shards merged), keyed as in remedy.json, plus the sanity verdicts."""
    grouped: dict[str, list[dict]] = {}
    for p in sorted((run_dir / "remedy").glob("*.json")):
        grouped.setdefault(p.stem.split("@")[0], []).append(json.loads(p.read_text()))
    parts = {key: merge_shards(found) if len(found) > 1 else found[0] for key, found in grouped.items()}
    return {"parts": parts, **checks_of(parts)}


def checks_of(parts: dict) -> dict:
    """The gradient-masking verdicts, one `checks_eps*` entry per radius with a sanity part."""
    from pipeline.robustness.literature import sanity_checks

    checks = {}
    for key, part in parts.items():
        if key.startswith("sanity"):
            auto = parts.get(key.replace("sanity", "autoattack"), {}).get("by_attack")
            square = parts.get(key.replace("sanity", "square"), {}).get("acc")
            checks[key.replace("sanity", "checks")] = sanity_checks(part["eps_curve"], part["strength"], auto, square)
    return checks


def record(run_dir: Path, preset: str, results_dir: Path) -> dict:
    from pipeline.tracking import run_ref

    ref = run_ref.read(run_dir)
    result = {"preset": preset, "run_id": ref["run_id"], "train_seconds": ref.get("train_seconds"), **gather(run_dir)}
    blob = __import__("torch").load(
        ref.get("best_checkpoint") or run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    )["hyper_parameters"]
    result["model"], result["adversarial"], result["optim"] = (
        blob["model_cfg"],
        blob["adversarial_cfg"],
        blob["optim_cfg"],
    )
    flat = {}
    for key, part in result["parts"].items():
        if "acc" in part:
            flat[f"remedy/{key}_acc"] = part["acc"]
        for attack, acc in part.get("by_attack", {}).items():
            flat[f"remedy/{key}_{attack}_acc"] = acc
    for key, checks in result.items():
        if key.startswith("checks"):
            flat.update({f"remedy/{key}_{k}": float(v) for k, v in checks.items() if isinstance(v, (bool, int, float))})
    out = _write_json(run_dir / "remedy.json", result)
    _write_json(results_dir / "remedy.json", result)
    run = run_ref.run_of(ref)
    run.log_metrics(flat)
    run.log_artifact(out, "robustness")
    return result


def _args(argv):
    p = argparse.ArgumentParser(prog="python -m pipeline.stages.remedy", description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path, help="a finished training run (holds run.json and checkpoints/)")
    p.add_argument("part", choices=PARTS)
    p.add_argument("--eps", type=float, default=0.3, help="L-inf radius, pixel scale (default 0.3)")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"first N test images (default: 10,000; 1,000 for {', '.join(FIRST_THOUSAND)})",
    )
    p.add_argument(
        "--start",
        type=int,
        default=0,
        help="first test image of a shard (run shards of one part side by side; record merges them)",
    )
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--data-root", default="data/mnist")
    p.add_argument("--preset", default="robust_pgd", help="record: the training preset's name, for the report")
    p.add_argument("--results-dir", type=Path, default=Path("reports/results"))
    args = p.parse_args(argv)
    if not (args.run_dir / "run.json").is_file():
        p.error(
            f"{args.run_dir} has no run.json: give the run_dir of a finished training "
            f"(python -m pipeline.stages.train +experiment=robust_pgd run_dir=...)"
        )
    if not 0.0 <= args.eps <= 1.0:
        p.error(f"--eps {args.eps} is outside [0, 1] (pixel scale); the literature's MNIST eps is 0.3")
    if args.n is not None and not 0 < args.n <= TEST_IMAGES:
        p.error(f"--n {args.n} must be in 1..{TEST_IMAGES}")
    if not 0 <= args.start < TEST_IMAGES or (args.n and args.start + args.n > TEST_IMAGES):
        p.error(f"--start {args.start} with --n {args.n} reaches past the {TEST_IMAGES} test images")
    return args


def main(argv=None) -> None:
    args = _args(argv)
    if args.part == "record":
        result = record(args.run_dir, args.preset, args.results_dir)
        print(json.dumps({k: v for k, v in result.items() if k.startswith("checks")}, indent=2))
        print(
            f"[remedy] wrote {args.run_dir / 'remedy.json'} and {args.results_dir / 'remedy.json'}; "
            f"logged to MLflow run {result['run_id']}",
            flush=True,
        )
        return
    n = args.n or (1000 if args.part in FIRST_THOUSAND else TEST_IMAGES)
    from pipeline.data.mnist import DataError

    try:
        model, x, y = _load(args.run_dir, args.data_root, n, args.start)
    except (DataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    at = "" if args.part == "clean" else f" at eps={args.eps:g}"
    shard = (args.start, args.start + len(y)) if args.start else None
    where = f"test images {args.start}..{args.start + len(y) - 1}" if shard else f"the first {len(y)} test images"
    print(f"[remedy] {args.part}{at} on {where}", flush=True)
    result = compute_part(args.part, model, x, y, args.eps, args.batch_size)
    path = _write_json(part_path(args.run_dir, args.part, args.eps, shard), result)
    print(f"[remedy] {json.dumps({k: v for k, v in result.items() if k != 'strength'})}", flush=True)
    print(f"[remedy] wrote {path}", flush=True)


if __name__ == "__main__":
    main()
