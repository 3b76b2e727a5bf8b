"""Every command the docs name answers `--help`: a renamed module cannot leave a stale line behind.

The commands are collected from what a user reads and runs: README.md, docs/, benchmarks/README.md,
the comments of conf/, dvc.yaml and scripts/. Console scripts come from pyproject.toml and run
through their entry point; `python -m` forms run as written. `--help` must answer without
importing torch, Lightning or MLflow, so the whole file takes seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest
from conftest import HEAVY_MODULES, PROJECT, _command_env

DOCUMENTS = (
    "README.md",
    "docs/*.md",
    "benchmarks/README.md",
    "conf/**/*.yaml",
    "dvc.yaml",
    "scripts/*.sh",
)
# `python -m pipeline.stages.train`, `python -m benchmarks`; not a placeholder (`pipeline.stages.<name>`).
MODULE_FORM = re.compile(r"python -m ((?:pipeline|benchmarks)(?:\.\w+)*)(?!\.?[\w<])")
SCRIPT_FORM = re.compile(r"(?<![\w./-])(pipeline-[a-z]+)(?![\w-]|\.\w)")

# What a user's shell runs for a console script: its entry point, called as the wrapper pip writes.
_ENTRY_POINT = "import sys; sys.argv[0] = {name!r}; from {module} import {function}; sys.exit({function}())"
_MODULE = "import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
# Like conftest.run_module_noting_imports: what the command had imported when it exited.
_NOTE_IMPORTS = """
import atexit, json, sys
note, heavy, code = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
sys.argv = ["-c", *sys.argv[4:]]
atexit.register(lambda: open(note, "w").write(json.dumps([m for m in heavy if m in sys.modules])))
exec(compile(code, "<command>", "exec"), {"__name__": "__main__"})
"""


def documents() -> list[Path]:
    return sorted({p for pattern in DOCUMENTS for p in PROJECT.glob(pattern) if p.is_file()})


def console_scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts]: command name -> `module:function`."""
    return tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]


def named_commands(text: str) -> tuple[set[str], set[str]]:
    """The `python -m` modules and the `pipeline-<name>` commands a text names."""
    return set(MODULE_FORM.findall(text)), set(SCRIPT_FORM.findall(text))


def documented() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """module -> where it is named; console script -> where it is named."""
    modules: dict[str, set[str]] = {}
    scripts: dict[str, set[str]] = {}
    for path in documents():
        found_modules, found_scripts = named_commands(path.read_text())
        where = str(path.relative_to(PROJECT))
        for module in found_modules:
            modules.setdefault(module, set()).add(where)
        for script in found_scripts:
            scripts.setdefault(script, set()).add(where)
    return modules, scripts


def runnable(module: str) -> bool:
    """`python -m module` can run: a module, or a package with a __main__."""
    try:
        spec = find_spec(module)
        return spec is not None and (
            spec.submodule_search_locations is None or find_spec(f"{module}.__main__") is not None
        )
    except ModuleNotFoundError:
        return False


def stale_lines(modules: dict[str, set[str]], scripts: dict[str, set[str]]) -> list[str]:
    """The documented commands that do not exist, each with the files that name it."""
    known = console_scripts()
    stale = [f"python -m {m} (in {', '.join(sorted(w))})" for m, w in sorted(modules.items()) if not runnable(m)]
    stale += [
        f"{s} (in {', '.join(sorted(w))}): not in pyproject.toml" for s, w in sorted(scripts.items()) if s not in known
    ]
    return stale


def ask_for_help(code: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -c code --help` in a fresh process; also return the heavy modules it imported."""
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "imported.json"
        out = subprocess.run(
            [sys.executable, "-c", _NOTE_IMPORTS, str(note), ",".join(HEAVY_MODULES), code, "--help"],
            cwd=PROJECT,
            env=_command_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        imported = set(json.loads(note.read_text())) if note.is_file() else {"(no exit handlers ran)"}
        return out, imported


def help_code(command: str) -> str:
    """The Python that runs a command: a console script's entry point, or `python -m` as written."""
    if command.startswith("pipeline-"):
        module, function = console_scripts()[command].split(":")
        return _ENTRY_POINT.format(name=command, module=module, function=function)
    return _MODULE.format(module=command)


def what_it_does(help_text: str) -> str:
    """The first line of --help that is not its usage: the sentence that says what the command does."""
    lines = [line.strip() for line in help_text.splitlines()]
    start = 0
    if lines and lines[0].startswith("usage:"):  # argparse: the usage block, then a blank line
        start = lines.index("") if "" in lines else len(lines)
    return next((line for line in lines[start:] if line), "")


def test_the_docs_name_only_commands_that_exist():
    modules, scripts = documented()
    assert "pipeline.stages.train" in modules and "benchmarks" in modules and "pipeline-train" in scripts
    assert not stale_lines(modules, scripts), "rename these in the docs (or restore the module):\n" + "\n".join(
        stale_lines(modules, scripts)
    )


def test_a_stale_line_is_caught():
    # A doc line naming a module that moved away, beside ones that exist, and a placeholder.
    text = (
        "Run `python -m pipeline.train model=cnn` (moved), `python -m pipeline.stages.train`,\n"
        "`python -m pipeline.stages.<name>` and `pipeline-trian --help`; pipeline-ui."
    )
    modules, scripts = named_commands(text)
    assert modules == {"pipeline.train", "pipeline.stages.train"}
    assert scripts == {"pipeline-trian", "pipeline-ui"}
    stale = stale_lines({m: {"fake.md"} for m in modules}, {s: {"fake.md"} for s in scripts})
    assert stale == ["python -m pipeline.train (in fake.md)", "pipeline-trian (in fake.md): not in pyproject.toml"]


def test_every_documented_command_answers_help_without_heavy_imports():
    modules, _ = documented()
    # A module behind a console script answers once, through its entry point (the same main()).
    behind_scripts = {entry.split(":")[0] for entry in console_scripts().values()}
    commands = sorted(console_scripts()) + sorted(m for m in modules if runnable(m) and m not in behind_scripts)
    assert len(commands) > len(console_scripts()), "expected python -m forms beyond the console scripts"
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = dict(zip(commands, pool.map(lambda c: ask_for_help(help_code(c)), commands), strict=True))
    failures = []
    for command, (out, imported) in answers.items():
        text = out.stdout
        if out.returncode != 0:
            failures.append(f"{command} --help: exit {out.returncode}\n{out.stderr[-1500:]}")
        elif "usage:" not in text and "== Configuration groups ==" not in text:
            failures.append(f"{command} --help printed no usage line:\n{text[:500]}")
        elif imported:
            failures.append(f"{command} --help imported {sorted(imported)}: it must answer before any heavy import")
        elif command.startswith("pipeline-"):
            first = what_it_does(text)
            if len(first.split()) < 4 or "powered by Hydra" in first:
                failures.append(f"{command} --help does not say what the command does: {first!r}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(
    ("help_text", "sentence"),
    [
        ("usage: x [-h]\n\nCheck the store.\n\noptions:\n", "Check the store."),
        ("usage: x [-h]\n       [--long]\n\nShow the models.\n", "Show the models."),
        (
            "Train stage: fit and track.\nusage: pipeline-train [KEY=VALUE ...]\n\n== Configuration groups ==\n",
            "Train stage: fit and track.",
        ),
        ("usage: x [-h]\n\noptions:\n  -h, --help\n", "options:"),
    ],
)
def test_what_it_does_reads_the_first_line_after_the_usage(help_text, sentence):
    assert what_it_does(help_text) == sentence
