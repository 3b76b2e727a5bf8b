"""Rewrite each stage's code dependencies in dvc.yaml from its import closure.

    python scripts/update-dvc-deps.py && dvc commit     # after adding or moving an import

tests/test_dvc_graph.py computes the same closures and fails while dvc.yaml differs; this
writes what it expects. Only the `- src/...` lines of each stage's deps change: comments,
data and parameter lines stay as they are. `dvc commit` then records the new dependencies
without rerunning stages whose outputs did not change.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT / "tests"), str(PROJECT / "src")]

from code_graph import closure  # noqa: E402

from pipeline.stages import order as stages  # noqa: E402


def main() -> int:
    path = PROJECT / "dvc.yaml"
    lines = path.read_text().splitlines(keepends=True)
    out, stage, changed = [], None, []
    for line in lines:
        header = re.match(r"^  (\w+):\s*$", line)
        if header:
            stage = header.group(1)
        dep = re.match(r"^(\s+)- src/", line)
        if dep and stage in stages.STAGES:
            if out and out[-1] is not None and getattr(out[-1], "marker", False):
                continue  # already replaced this stage's block
            wanted = sorted(str(p.relative_to(PROJECT)) for p in closure(stages.STAGES[stage][0]))
            block = "".join(f"{dep.group(1)}- {w}\n" for w in wanted)
            out.append(_Block(block))
            changed.append(stage)
            continue
        out.append(line)
    text = "".join(str(x) for x in out)
    if text != path.read_text():
        path.write_text(text)
        print(f"dvc.yaml: code dependencies rewritten for {', '.join(dict.fromkeys(changed))}; now run `dvc commit`")
    else:
        print("dvc.yaml: code dependencies already match the import closures")
    return 0


class _Block(str):
    marker = True


if __name__ == "__main__":
    sys.exit(main())
