"""`pipeline-config`: print the default composition of conf/, with optional overrides.

python -m pipeline.stages.config > params.yaml
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from pipeline.config.settings import compose


def main() -> None:
    """Print the default composition (with optional overrides): `python -m pipeline.stages.config > params.yaml`."""
    cfg = compose(sys.argv[1:])
    sys.stdout.write(OmegaConf.to_yaml(cfg))


if __name__ == "__main__":
    main()
