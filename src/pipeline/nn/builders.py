"""Building from config has one home: name -> constructor, for models, optimisers and schedulers.

A new model, optimiser or scheduler is one entry here (and its name in config.py's
list of choices, which a test keeps equal). Every constructor reads a plain dict
section of the config (`model`, `optim`), as a checkpoint stores it: checkpoints
load with torch.load(weights_only=True).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from pipeline.nn.models import CNN, MLP, SmallConv

MODELS: dict[str, Callable[[Mapping], nn.Module]] = {
    "mlp": lambda c: MLP(
        hidden=tuple(c["hidden"]),
        activation=c["activation"],
        dropout=c.get("dropout", 0.0),
        batch_norm=c.get("batch_norm", False),
        init=c.get("init", "default"),
    ),
    "cnn": lambda c: CNN(channels=tuple(c["channels"]), hidden=c["hidden"], dropout=c.get("dropout", 0.0)),
    "smallconv": lambda c: SmallConv(channels=tuple(c["channels"]), hidden=c["hidden"]),
}

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c["lr"], weight_decay=c.get("weight_decay", 0.0)),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c["lr"], weight_decay=c.get("weight_decay", 0.0)),
    # Nesterov's momentum when there is momentum; momentum=0 is plain SGD.
    "sgd": lambda params, c: torch.optim.SGD(
        params,
        lr=c["lr"],
        momentum=c.get("momentum", 0.9),
        weight_decay=c.get("weight_decay", 0.0),
        nesterov=c.get("momentum", 0.9) > 0,
    ),
}

# Stepped every optimiser step; `steps` is the whole training's number of steps.
SCHEDULERS: dict[str, Callable | None] = {
    "none": None,
    "cosine": lambda optimizer, c, steps: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps),
    "cyclic": lambda optimizer, c, steps: torch.optim.lr_scheduler.LambdaLR(optimizer, _triangle(steps)),
    "onecycle": lambda optimizer, c, steps: torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=c["lr"], total_steps=steps, pct_start=max(0.25, 2 / steps)
    ),
}


def _triangle(steps: int) -> Callable[[int], float]:
    """Wong et al.'s cyclic rate: linear from 0 up to lr at 40 % of training, then down to 0."""
    peak = 0.4 * steps
    return lambda t: t / peak if t < peak else max(0.0, (steps - t) / (steps - peak))


def _lookup(table: Mapping, key: str, name) -> Callable:
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {key} {name!r}; choose {', '.join(table)}") from None


def build_model(model_cfg: Mapping) -> nn.Module:
    """The network a `model` section describes (a dict or DictConfig)."""
    return _lookup(MODELS, "model.arch", model_cfg["arch"])(model_cfg)


def build_optimizer(params, optim_cfg: Mapping) -> torch.optim.Optimizer:
    return _lookup(OPTIMIZERS, "optim.name", optim_cfg["name"])(params, optim_cfg)


def build_scheduler(optimizer: torch.optim.Optimizer, optim_cfg: Mapping, steps: int):
    """The learning-rate schedule of `optim.scheduler` over `steps` steps; None for a constant rate."""
    make = _lookup(SCHEDULERS, "optim.scheduler", optim_cfg.get("scheduler", "none"))
    return None if make is None else make(optimizer, optim_cfg, steps)


def load_checkpoint(path: str | Path) -> nn.Module:
    """Rebuild the model from a training checkpoint without unpickling code.

    weights_only=True refuses anything but tensors and plain containers, so a
    checkpoint from a stranger cannot run code on load.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model_cfg = blob["hyper_parameters"]["model_cfg"]
    model = build_model(model_cfg)
    state = {k[len("net.") :]: v for k, v in blob["state_dict"].items() if k.startswith("net.")}
    model.load_state_dict(state)
    if model_cfg.get("channels_last"):
        # As trained (training/module.py): NHWC convolutions, faster attacks and evaluation on CPU.
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
