"""The pipeline's stages, in the order dvc.yaml runs them (a test keeps the two equal).

A Hydra run (`python -m pipeline.train ...`) trains and then runs the stages that
follow training here, so the order lives in one place. Stage code is imported by
name, on demand: a DVC stage (`--params`) never runs the stages after it, so
they are no part of its code (see tests/test_dvc_graph.py).
"""

from __future__ import annotations

import importlib

# name -> (module that `python -m` runs, the function that does the stage's work)
STAGES: dict[str, tuple[str, str]] = {
    "data": ("pipeline.data", "pipeline.data:run"),
    "train": ("pipeline.train", "pipeline.train:run_dvc"),
    "evaluate": ("pipeline.evaluate", "pipeline.evaluate:evaluate"),
    "robustness": ("pipeline.robustness", "pipeline.robustness.stage:evaluate_robustness"),
    "report": ("pipeline.report", "pipeline.report:run"),
}
# The report reads many runs' results, not one training's: a Hydra job stops before it.
_JOB_ENDS_BEFORE = "report"


def command(name: str) -> str:
    """The stage's command line as dvc.yaml writes it."""
    return f"python -m {STAGES[name][0]} --params params.yaml"


def after_training(cfg) -> list[str]:
    """The stages a Hydra job runs after training, in pipeline order."""
    names = list(STAGES)
    later = names[names.index("train") + 1 : names.index(_JOB_ENDS_BEFORE)]
    # The robustness stage takes minutes: only when asked (robustness.after_training=true).
    return [n for n in later if n != "robustness" or cfg.robustness.get("after_training")]


def run(name: str, cfg):
    """Run one stage's work on a composed config."""
    module, _, function = STAGES[name][1].partition(":")
    return getattr(importlib.import_module(module), function)(cfg)
