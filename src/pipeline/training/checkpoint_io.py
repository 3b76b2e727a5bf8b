"""Checkpoints written to a temporary file, flushed, then renamed: a crash or a full disk during
a save leaves the previous last.ckpt / best.ckpt intact, so a resume never reads half a file."""

from __future__ import annotations

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pipeline.common import atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if "://" in str(path):  # remote storage: fsspec's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic.replacing(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
