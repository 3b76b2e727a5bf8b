"""The pipeline's stages, in the order dvc.yaml runs them (a test keeps the two equal).

A Hydra run (`python -m pipeline.stages.train ...`) trains and then runs the stages that
follow training here, so the order lives in one place. pipeline.stages.train imports
them by name, on demand: a DVC stage (`--params`) never runs the stages after it, so
they are no part of its code (see tests/test_dvc_graph.py).
"""

from __future__ import annotations

# name -> (module that `python -m` runs, the function that does the stage's work)
STAGES: dict[str, tuple[str, str]] = {
    "data": ("pipeline.stages.data", "pipeline.stages.data:run"),
    "train": ("pipeline.stages.train", "pipeline.stages.train:run_dvc"),
    "evaluate": ("pipeline.stages.evaluate", "pipeline.stages.evaluate:evaluate"),
    "robustness": ("pipeline.stages.robustness", "pipeline.stages.robustness:evaluate_robustness"),
    "report": ("pipeline.stages.report", "pipeline.stages.report:run"),
}
# The report reads many runs' results, not one training's: a Hydra job stops before it.
JOB_ENDS_BEFORE = "report"


def command(name: str) -> str:
    """The stage's command line as dvc.yaml writes it."""
    return f"python -m {STAGES[name][0]} --params params.yaml"
