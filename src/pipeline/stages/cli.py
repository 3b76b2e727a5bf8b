"""The two front doors of every stage: `--params params.yaml` (DVC) or Hydra overrides (people).

A bad setting stops here, before any heavy import, with one line that names it and the fix, exit
status 2, and no run folder left behind.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn, cast

from omegaconf import DictConfig, OmegaConf

from pipeline.config.overrides import check_added_keys, check_top_level_keys, unknown_key_hint
from pipeline.config.settings import CONF_DIR, ConfigError, check_group_overrides, load_params, preset_slot, validate

BAD_SETTING = 2  # the exit status of every refused setting, as for a command-line usage error
# The stage module this process's Hydra app runs (pipeline.stages.train, ...baselines): Hydra names
# every app "cli", after the module that defines it, so a sweep's parent reads the stage from here.
running_stage = "pipeline.stages.train"


def refuse(message: object) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(BAD_SETTING)


def params_main(argv: Sequence[str] | None, run: Callable[[DictConfig], object], prog: str) -> None:
    """Front door for DVC stages: `python -m pipeline.X --params params.yaml`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2 or argv[0] != "--params":
        refuse(f"usage: python -m {prog} --params params.yaml")
    try:
        cfg = load_params(argv[1])
        with store_settings(cfg):
            run(cfg)
    except ConfigError as err:
        refuse(err)


@contextlib.contextmanager
def store_settings(cfg: DictConfig) -> Iterator[None]:
    """The tracking store's wait for a busy SQLite file, and one clear message, exit 2, when
    MLflow's own wait (20 s on each write) runs out mid-run: the file, the cause, what to type."""
    from pipeline.tracking import client, store

    tracking = cfg.get("tracking")
    client.set_lock_timeout(tracking.get("lock_timeout_s") if tracking is not None else None)
    store.quiet_lock_tracebacks()
    try:
        yield
    except Exception as err:
        db = store.sqlite_path(client.resolve_uri(tracking.get("uri") if tracking is not None else None))
        if db is None or not store.is_lock_error(err):
            raise
        raise store.locked(db) from None


def remove_if_empty(run_dir: str) -> None:
    """A refused run leaves no folder: Hydra made it (with only its .hydra/ record) before the check."""
    folder = Path(run_dir).absolute()
    if folder.is_dir() and {p.name for p in folder.iterdir()} <= {".hydra"}:
        shutil.rmtree(folder, ignore_errors=True)
        # and the folders above it that Hydra made for it (outputs/runs/), if nothing else is there
        cwd = Path.cwd().absolute()
        for parent in folder.parents:
            if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()


def help_overrides(prog: str) -> list[str]:
    """What `--help` of a Hydra app prints first: what the command does and how it is called.

    The sentence is the first line of the stage module's docstring (Hydra's own header would
    name every app "cli", after this module). Overrides of `hydra.help` change only the help.
    """
    main = sys.modules.get("__main__")
    ran_as_main = getattr(getattr(main, "__spec__", None), "name", None) == prog
    module = main if ran_as_main else sys.modules.get(prog)
    what = ((module.__doc__ if module else None) or prog).strip().splitlines()[0]
    script = Path(sys.argv[0]).name
    name = script if script.startswith("pipeline-") else f"python -m {prog}"
    header = f"{what}\nusage: {name} [KEY=VALUE ...] [-m] [--cfg job] [--help]\n"

    def quoted(text: str) -> str:  # Hydra's override grammar: a quoted value, escapes as in Python
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return [f"hydra.help.app_name={quoted(name)}", f"hydra.help.header={quoted(header)}"]


def hydra_main(task: Callable[[DictConfig], object], fresh_run_dir: bool = False, prog: str | None = None) -> object:
    """Front door for people: a Hydra app over conf/ with command-line overrides and multirun.

    With fresh_run_dir (training), a run writes into Hydra's own output directory
    unless `run_dir=` is given; later stages read `run_dir` as configured.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    global running_stage
    running_stage = prog or running_stage
    started: list[bool] = []  # whether Hydra got as far as the task: its exit 1 is then the task's

    @hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
    def app(cfg: DictConfig) -> object:
        started.append(True)
        hydra_cfg = HydraConfig.get()
        # As typed: an override holding `${...}` must not be resolved inside Hydra's own config.
        typed = cast(list[str], OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
        if fresh_run_dir and not any(o.startswith("run_dir=") for o in typed):
            cfg.run_dir = hydra_cfg.runtime.output_dir
        try:
            check_added_keys(typed, cfg)
            validate(cfg)
            with store_settings(cfg):
                return task(cfg)  # a setting only the task can check (a Trainer argument) stops it the same way
        except ConfigError as err:
            remove_if_empty(hydra_cfg.runtime.output_dir)
            refuse(err)

    sys.argv = [sys.argv[0], *preset_slot(sys.argv[1:])]
    if prog and {"--help", "-h"} & set(sys.argv[1:]):
        sys.argv += help_overrides(prog)
    from hydra.errors import ConfigCompositionException, OverrideParseException

    overrides = list(sys.argv[1:])
    try:
        return app()
    except (ConfigCompositionException, OverrideParseException) as err:
        # Hydra prints these itself, unless it believes a debugger runs (any tracer, coverage
        # included): then it raises them. Either way the user gets one message, no traceback.
        hint = unknown_key_hint(overrides)
        if hint:
            print(err, file=sys.stderr)
            refuse(hint)
        refuse(err)
    except SystemExit as stop:
        # Hydra printed why it refused the overrides and exits 1: name the closest valid key, exit 2.
        hint = unknown_key_hint(overrides) if stop.code == 1 and not started else None
        if hint is None:
            raise
        refuse(hint)


def stage_main(
    prog: str,
    dvc_task: Callable[[DictConfig], object],
    hydra_task: Callable[[DictConfig], object] | None = None,
    fresh_run_dir: bool = False,
    argv: Sequence[str] | None = None,
) -> None:
    """Both front doors of a stage: `--params params.yaml` (DVC) or Hydra overrides (people)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--params"]:
        params_main(args, dvc_task, prog)
    else:
        try:
            check_group_overrides(args)
            check_top_level_keys(args)
        except ConfigError as err:
            refuse(err)
        hydra_main(hydra_task or dvc_task, fresh_run_dir, prog)
