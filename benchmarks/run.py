"""Run the benchmarks and print one table of medians and ratios measured in this one run.

    python -m benchmarks                       # all default benchmarks, 5 repeats (~10 min on 2 cores)
    python -m benchmarks --quick               # tiny sizes, seconds each (what the tests run)
    python -m benchmarks --only data,loop      # a selection
    python -m benchmarks --full --dvc          # add the CNN to 99.5 %, the whole test suite and
                                               # `dvc repro` stage by stage on a fresh clone (long)

Writes the results as JSON (--out, default benchmarks/results/latest.json) and the table as markdown
beside it (same name, .md). Benchmarks print their training logs to a .log file beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import PROJECT, machine, machine_header, markdown_table, row

BENCHMARKS = {  # name -> module
    "data": "data_path",
    "loop": "loop",
    "tta": "time_to_accuracy",
    "startup": "startup",
    "command": "command",
    "system_metrics": "system_metrics",
    "attack": "attack_cost",
    "choices": "choices",
    "repro": "reproducible_cost",
    "gpu": "gpu",
    "tests": "suite",
    "pruning": "pruning",
}
# Minutes each and about the sweeper rather than speed: only when named (--only pruning).
OPT_IN = ("pruning",)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--only",
        default=",".join(name for name in BENCHMARKS if name not in OPT_IN),
        help=f"comma-separated selection of: {', '.join(BENCHMARKS)} (default: all but {', '.join(OPT_IN)})",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds): a smoke test, not a measurement")
    p.add_argument("--repeats", type=int, default=5, help="repeats per measurement, interleaved A/B (default 5)")
    p.add_argument(
        "--full",
        action="store_true",
        help="also the CNN (experiment=cnn) to 99.5%% (~2-3 min on a CPU) and the whole test suite (~30 min)",
    )
    p.add_argument(
        "--dvc",
        action="store_true",
        help="also the wall time of the default pipeline's stages (train, evaluate, robustness)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads in this process (default: torch's choice). On a machine shared with "
        "other jobs, 1 avoids OpenMP threads waiting on each other",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=PROJECT / "benchmarks" / "results" / "latest.json",
        help="JSON results path; the markdown table and the log go beside it",
    )
    p.add_argument("--verbose", action="store_true", help="show the benchmarks' own output instead of logging it")
    args = p.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


@contextlib.contextmanager
def quiet(log_path: Path, verbose: bool):
    """Send the trainings' chatter (Lightning, MLflow, [train] lines) to a log file."""
    if verbose:
        yield
        return
    with (
        log_path.open("a") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        handler = logging.StreamHandler(log)
        root = logging.getLogger()
        saved = root.handlers[:]
        root.handlers = [handler]
        lightning_loggers = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
        levels = [lg.level for lg in lightning_loggers]
        for lg in lightning_loggers:
            lg.setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.handlers = saved
            for lg, level in zip(lightning_loggers, levels, strict=False):
                lg.setLevel(level)


def main(argv=None) -> dict:
    args = parse(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    print(machine_header(info), flush=True)
    if info["load_average_1m"] and info["load_average_1m"] > 0.5 * (info["cores_usable"] or 1):
        print(
            f"warning: the machine is busy (load {info['load_average_1m']:.1f} on {info['cores_usable']} cores): "
            "timings are noisy" + ("" if args.threads else "; --threads 1 limits the damage"),
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_suffix(".log")
    log_path.write_text("")
    rows, started = [], time.perf_counter()
    for name in args.only:
        module = importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", end=" ", flush=True)
        try:
            with quiet(log_path, args.verbose):
                got = module.run(quick=args.quick, repeats=args.repeats, full=args.full, dvc=args.dvc)
        except Exception as err:  # one broken benchmark must not cost the others' results
            with log_path.open("a") as log:
                traceback.print_exc(file=log)
            got = [row(name, "failed", None, note=f"{type(err).__name__}: {str(err)[:300]}", failed=True)]
        rows += got
        print(f"{time.perf_counter() - t0:.0f}s", flush=True)
    table = markdown_table(rows)
    mode = "quick" if args.quick else f"{args.repeats} repeats"
    header = machine_header(info)
    md = (
        f"# Benchmarks ({mode})\n\n{header}\n\nMedians of interleaved repeats; ratio = ours / baseline. "
        f"Total {time.perf_counter() - started:.0f} s.\n\n{table}\n"
    )
    args.out.with_suffix(".md").write_text(md)
    result = {
        "machine": info,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seconds": time.perf_counter() - started,
        "results": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table)
    print(f"\nwrote {args.out}, {args.out.with_suffix('.md')} (log: {log_path})")
    return result


if __name__ == "__main__":
    failed = any(r["checks"].get("failed") for r in main()["results"])
    sys.exit(1 if failed else 0)
