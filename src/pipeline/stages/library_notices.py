"""Two library notices that every training printed and no user can act on, kept out of its output.

- Lightning's "💡 Tip: ... try installing litlogger ..." on every Trainer built without its cloud
  logger: an advertisement (this project records to MLflow), once per run and per sweep job.
- torch's FutureWarning that `isinstance(treespec, LeafSpec)` is deprecated: raised inside
  Lightning's own code (`lightning/pytorch/utilities/_pytree.py`) at the first batch, about a call
  that only a Lightning release can change.

Everything else Lightning says is kept: whether a GPU is used, the hint to prefix `srun` on a
machine with SLURM, and its real warnings about a run's settings.

Applied by the training command's entry point (stages/train.py `as_command`), never by library code.
This module changes what is printed and nothing a stage writes, so it is no DVC dependency:
tests/code_graph.py lists it as output-only, and tests/test_dvc_graph.py checks that it imports only
logging and warnings and that only a stage's entry-point module imports it.
"""

from __future__ import annotations

import logging
import warnings

LITLOGGER_TIP = "💡 Tip: For seamless cloud logging"
LEAFSPEC_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# Lightning's rank-zero messages go through one of these, whichever of its packages was imported last.
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def _not_the_litlogger_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(LITLOGGER_TIP)


def quiet_unactionable_notices() -> None:
    """Drop the two notices above from here on (in this process); calling it again changes nothing."""
    for name in RANK_ZERO_LOGGERS:
        logging.getLogger(name).addFilter(_not_the_litlogger_tip)  # the same filter is added once
    # filterwarnings replaces an identical filter instead of adding a second one.
    warnings.filterwarnings("ignore", message=LEAFSPEC_DEPRECATION, category=FutureWarning)
