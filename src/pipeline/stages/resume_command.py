"""After a failed or interrupted Hydra run: the exact command that resumes it.

It is the last line the user sees (printed at exit, after Hydra's or Python's own report) and the
run's description in MLflow, so nobody has to dig out the run folder to pass it as `run_dir=`."""

from __future__ import annotations

import atexit
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

_pending: list[str] = []


def command_line(overrides: Sequence[str], run_dir: str | Path) -> str:
    """The training command with the same overrides, pointed at the run's folder."""
    script = Path(sys.argv[0]).name
    name = script if script.startswith("pipeline-") else "python -m pipeline.stages.train"
    kept = [o for o in overrides if not o.startswith("run_dir=")]
    return " ".join([name, *(shlex.quote(o) for o in kept), shlex.quote(f"run_dir={Path(run_dir).absolute()}")])


def store_unreachable(err: BaseException) -> bool:
    """Whether err came from the tracking store itself (locked, or a server that does not answer):
    then writing the description would only wait for it again."""
    from pipeline.tracking.metric_journal import unreachable
    from pipeline.tracking.store import is_lock_error

    return unreachable(err) or is_lock_error(err)


def announce(run_dir: str | Path, overrides: Sequence[str], err: BaseException, stages: list[str]) -> str | None:
    """If the run is unfinished (its training, its recording while the tracking server did not answer,
    or one of `stages` after it), say how to resume it."""
    from pipeline.tracking import run_ref
    from pipeline.training.resume import what_is_left

    ref = run_ref.find(run_dir)
    if ref is None or what_is_left(ref, stages) == "done":
        return None
    line = command_line(overrides, run_dir)
    if not store_unreachable(err):
        try:
            run_ref.run_of(ref).set_tags(
                {"mlflow.note.content": f"Stopped before it finished. Resume with:\n\n    {line}"}
            )
        except Exception as tag_err:  # the printed line still says it
            print(f"warning: could not record the resume command in MLflow: {tag_err}", file=sys.stderr)
    if not _pending:
        atexit.register(_print_pending)
    _pending.append(line)
    return line


def _print_pending() -> None:
    for line in _pending:
        print(f"to resume: {line}", file=sys.stderr, flush=True)
