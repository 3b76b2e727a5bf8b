"""Training's output carries no library notice a user cannot act on, and keeps the ones they can."""

from __future__ import annotations

import logging
import warnings

import pytest

from pipeline.config.settings import compose
from pipeline.stages.library_notices import quiet_unactionable_notices


class Collected(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_messages():
    """What Lightning logs to its users (its rank-zero messages reach the `lightning.pytorch` logger)."""
    from pipeline.stages.library_notices import RANK_ZERO_LOGGERS

    handler = Collected()
    parent = logging.getLogger("lightning.pytorch")
    loggers = [parent, *map(logging.getLogger, RANK_ZERO_LOGGERS)]
    # As Lightning sets them up, whatever logging set-up an earlier test in this worker made.
    saved = [(lg.level, lg.disabled) for lg in loggers]
    parent.setLevel(logging.INFO)
    for lg in loggers:
        lg.disabled = False
    parent.addHandler(handler)
    yield handler.messages
    parent.removeHandler(handler)
    for lg, (level, disabled) in zip(loggers, saved, strict=True):
        lg.setLevel(level)
        lg.disabled = disabled


def test_the_training_command_keeps_the_device_report_and_drops_the_litlogger_advert(
    tmp_path, lightning_messages, monkeypatch
):
    from pipeline.stages import startup
    from pipeline.stages.train import as_command, build_trainer

    monkeypatch.setattr(startup, "_started", True)  # this test process's collector is left as it is
    # reproducible=false: the mode sets this test process's threads and oneDNN, and torch is loaded already
    as_command(lambda cfg: build_trainer(cfg, tmp_path))(compose(["trainer.max_epochs=1", "reproducible=false"]))
    assert any(m.startswith("GPU available") for m in lightning_messages), lightning_messages
    assert not [m for m in lightning_messages if "litlogger" in m]


def test_other_rank_zero_messages_still_pass(lightning_messages):
    from lightning.pytorch.utilities import rank_zero_info

    quiet_unactionable_notices()
    quiet_unactionable_notices()  # twice: still one filter, still everything else through
    rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    rank_zero_info("Tip: a message that only looks alike")
    assert lightning_messages == ["Tip: a message that only looks alike"]
    filters = logging.getLogger("lightning.pytorch.utilities.rank_zero").filters
    assert len(filters) == len(set(filters)) == 1


def test_the_leafspec_deprecation_from_lightnings_own_code_is_dropped_and_nothing_else():
    from lightning.pytorch.utilities._pytree import _tree_flatten

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_unactionable_notices()
        quiet_unactionable_notices()
        _tree_flatten(1.0)  # a leaf: Lightning builds a LeafSpec, which torch reports as deprecated
        warnings.warn("some other future change", FutureWarning, stacklevel=1)
        ours = [f for f in warnings.filters if f[1] is not None and "LeafSpec" in f[1].pattern]
    assert [str(w.message) for w in caught] == ["some other future change"]
    assert len(ours) == 1
