"""A throwaway copy of the project as git holds it (committed outputs included), and `dvc` run in it
as a user would: for tests of what DVC prints and renders from the committed files, no stage runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def project_copy(dest: Path, skip: tuple[str, ...] = ()) -> Path:
    """A fresh git repository with the project's tracked and unignored files (outputs/main, dvc.lock too),
    but those whose path starts with one of `skip`."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (PROJECT / name).is_file() and not name.startswith(skip):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, dest / name)
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=dest, check=True)  # the branch name rows show
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def dvc(project: Path, *args: str, columns: int = 120, timeout: int = 300) -> subprocess.CompletedProcess:
    """`dvc ARGS` in `project`, on a terminal `columns` wide (rich reads COLUMNS), never paged."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"COLUMNS": str(columns), "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-c", "from dvc.cli import main; raise SystemExit(main())", *args]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=timeout, env=env)
