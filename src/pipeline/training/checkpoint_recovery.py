"""A resume never trips over a damaged checkpoint, and a fresh start never deletes an intact one.

A `last.ckpt` cut short (a full disk on another machine, a copy interrupted, a crash outside the
atomic write) used to block its run folder for good: every rerun failed reading it. Now it is
moved aside, kept under a new name, and training continues from `best.ckpt` when that loads, or
starts again from epoch 1 in the same MLflow run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

CHECKPOINTS = ("last.ckpt", "best.ckpt")  # in the order a resume tries them


def loads(path: Path) -> bool:
    """Whether torch reads the whole checkpoint, as the project reads every checkpoint: tensors and
    plain containers only (training/module.py keeps them so)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def has_checkpoint(ckpt_dir: Path) -> bool:
    return any((ckpt_dir / name).is_file() for name in CHECKPOINTS)


def resume_point(ckpt_dir: Path) -> Path | None:
    """The checkpoint an interrupted training continues from, or None to start again from epoch 1.

    Each one that does not load is renamed <name>.damaged-<time> (kept for a post-mortem); one line
    says what was found and what happens next."""
    damaged: list[str] = []
    for name in CHECKPOINTS:
        path = ckpt_dir / name
        if not path.is_file():
            continue
        if loads(path):
            if damaged or name != CHECKPOINTS[0]:
                print(f"[train] {_damage_note(ckpt_dir, name, damaged)}resuming from {path}", flush=True)
            return path
        kept = path.with_name(f"{name}.damaged-{_stamp()}")
        path.rename(kept)
        damaged.append(f"{name} does not load (kept as {kept.name})")
    if damaged:
        print(
            f"[train] {_damage_note(ckpt_dir, None, damaged)}no intact checkpoint: training starts again "
            "from epoch 1 in the same MLflow run",
            flush=True,
        )
    return None


def _damage_note(ckpt_dir: Path, using: str | None, damaged: list[str]) -> str:
    if damaged:
        return f"{ckpt_dir}: " + "; ".join(damaged) + "; "
    return f"{ckpt_dir}: no last.ckpt; " if using else ""


def set_aside(ckpt_dir: Path) -> Path | None:
    """Before a fresh start in a folder that holds an unfinished run's checkpoints: keep them,
    renamed checkpoints.replaced-<time>, rather than delete them."""
    if not has_checkpoint(ckpt_dir):
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        return None
    kept = ckpt_dir.with_name(f"{ckpt_dir.name}.replaced-{_stamp()}")
    ckpt_dir.rename(kept)
    return kept
