"""`pipeline-registry`: registered models with val/best_acc and aliases; recompute the champion.

python -m pipeline.stages.registry                     # every registered model: versions, val/best_acc, aliases
python -m pipeline.stages.registry mnist-mlp --update  # recompute the champion of mnist-mlp
"""

from __future__ import annotations

import argparse
import sys

from pipeline.tracking import registry
from pipeline.tracking.client import resolve_uri
from pipeline.tracking.registry import ALIAS, METRIC, update_champion, version_scores


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.registry",
        description="Show registered models with val/best_acc and aliases; recompute the champion alias.",
    )
    p.add_argument("model", nargs="?", help="registered model name, e.g. mnist-mlp (default: all)")
    p.add_argument("--update", action="store_true", help=f"give alias '{ALIAS}' to the best version by {METRIC}")
    p.add_argument(
        "--tracking-uri", default=None, help="store (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db)"
    )
    args = p.parse_args(argv)

    uri = resolve_uri(args.tracking_uri)
    names = [args.model] if args.model else registry.registered_model_names(uri)
    if not names:
        print(f"no registered models in {uri}")
        return 0
    for name in names:
        if args.update:
            found = update_champion(uri, name)
            print(
                f"{name}: "
                + (
                    f"{ALIAS} -> version {found[0]} ({METRIC}={found[1]:.4f})"
                    if found
                    else f"no version with {METRIC}; alias unchanged"
                )
            )
        aliases = registry.model_aliases(uri, name)
        if aliases is None:
            print(f"error: no registered model {name!r} in {uri}", file=sys.stderr)
            return 2
        by_version: dict[int, list[str]] = {}
        for a, v in aliases.items():
            by_version.setdefault(v, []).append(a)
        print(name)
        scored = {v: acc for v, _, acc in version_scores(uri, name)}
        for version, run_id in registry.model_versions(uri, name):
            acc = f"{scored[version]:.4f}" if version in scored else "-"
            tags = ", ".join(sorted(by_version.get(version, [])))
            print(f"  version {version:>3}  {METRIC}={acc:<7} run {run_id}  {('@' + tags) if tags else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
