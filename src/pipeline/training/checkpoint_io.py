"""Checkpoints written to a temporary file, flushed, then renamed: a crash or a full disk during
a save leaves the previous last.ckpt / best.ckpt intact, so a resume never reads half a file.

Ctrl-C or SIGTERM waits for the save to finish: raised inside one of torch.save's writes, the
exception became the zip writer's RuntimeError ("unexpected pos ..."), and a stopped run ended
FAILED instead of KILLED (seen with SIGTERM at an epoch's end on a busy machine)."""

from __future__ import annotations

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pipeline.common import atomic
from pipeline.tracking.interrupts import ctrl_c_after_write


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if "://" in str(path):  # remote storage: fsspec's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        with ctrl_c_after_write(), atomic.replacing(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
