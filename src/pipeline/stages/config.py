"""`pipeline-config`: print the default composition of conf/, with optional overrides.

python -m pipeline.stages.config > params.yaml
"""

from __future__ import annotations

import argparse
import sys

from omegaconf import OmegaConf

from pipeline.config.settings import compose


def main(argv=None) -> None:
    """Print the default composition (with optional overrides): `python -m pipeline.stages.config > params.yaml`."""
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.config",
        description="Print the configuration composed from conf/ as YAML (`pipeline-config > params.yaml`).",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides, e.g. model=cnn")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = compose(args.overrides)
    sys.stdout.write(OmegaConf.to_yaml(cfg))


if __name__ == "__main__":
    main()
