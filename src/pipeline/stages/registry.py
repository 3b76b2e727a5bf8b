"""`pipeline-registry`: registered models with val/best_acc and aliases; show, set or recompute the champion.

python -m pipeline.stages.registry                           # every registered model: versions, val/best_acc, aliases
python -m pipeline.stages.registry mnist-mlp --champion 2    # version 2 is the champion until --update
python -m pipeline.stages.registry mnist-mlp --update        # validation chooses the champion again
"""

from __future__ import annotations

import argparse
import sys

from pipeline.tracking import registry
from pipeline.tracking.client import resolve_uri
from pipeline.tracking.registry import ALIAS, METRIC, PINNED_TAG, pin_champion, update_champion, version_scores


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.stages.registry",
        description="Show registered models with val/best_acc and aliases; set or recompute the champion alias.",
    )
    p.add_argument("model", nargs="?", help="registered model name, e.g. mnist-mlp (default: all)")
    p.add_argument(
        "--update",
        action="store_true",
        help=f"give alias '{ALIAS}' to the best version by {METRIC} (undoes --champion)",
    )
    p.add_argument(
        "--champion",
        type=int,
        metavar="VERSION",
        help=f"give alias '{ALIAS}' to this version and keep it there until --update (needs the model name)",
    )
    p.add_argument(
        "--tracking-uri", default=None, help="store (default: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db)"
    )
    args = p.parse_args(argv)
    if args.champion is not None and (args.model is None or args.update):
        p.error("--champion needs one model name, e.g. `pipeline-registry mnist-mlp --champion 2`, and not --update")

    uri = resolve_uri(args.tracking_uri)
    names = [args.model] if args.model else registry.registered_model_names(uri)
    if not names:
        print(f"no registered models in {uri}")
        return 0
    for name in names:
        if args.update or args.champion is not None:
            try:
                found = (
                    pin_champion(uri, name, args.champion) if args.champion else update_champion(uri, name, unpin=True)
                )
            except ValueError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            print(found.line(name) if found else f"{name}: no version with {METRIC}; alias unchanged")
        aliases = registry.model_aliases(uri, name)
        if aliases is None:
            print(f"error: no registered model {name!r} in {uri}", file=sys.stderr)
            return 2
        by_version: dict[int, list[str]] = {}
        for a, v in aliases.items():
            by_version.setdefault(v, []).append(a)
        pinned = registry.pinned_version(uri, name)
        print(name + (f"  ({ALIAS} pinned by hand: {PINNED_TAG}={pinned})" if pinned is not None else ""))
        scored = {v: acc for v, _, acc in version_scores(uri, name)}
        for version, run_id in registry.model_versions(uri, name):
            acc = f"{scored[version]:.4f}" if version in scored else "-"
            tags = ", ".join(sorted(by_version.get(version, [])))
            print(f"  version {version:>3}  {METRIC}={acc:<7} run {run_id}  {('@' + tags) if tags else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
