"""scripts/setup.sh's logic, with a stand-in interpreter that records what it is asked to do (nothing is
installed): the Python floor, runtime dependencies only unless --test, pip's output not silenced."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import PROJECT

SETUP = PROJECT / "scripts" / "setup.sh"


def _fake_python(folder: Path, version: str) -> Path:
    """An executable that answers like Python `version` and logs every call's arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    major, minor = (int(v) for v in version.split(".")[:2])
    old = (major, minor) < (3, 11)
    script = folder / "python"
    script.write_text(f"""#!/bin/sh
echo "$@" >> "{folder}/calls.log"
case "$1" in
  --version) echo "Python {version}" ;;
  -c) exit {1 if old else 0} ;;
esac
exit 0
""")
    script.chmod(0o755)
    return script


def _setup(tmp_path: Path, *args: str, version: str = "3.11.7") -> tuple[subprocess.CompletedProcess, list[str]]:
    venv = tmp_path / "venv"
    python = _fake_python(venv / "bin", version)
    env = dict(os.environ, PYTHON=str(python), VENV=str(venv))
    out = subprocess.run(["bash", str(SETUP), *args], capture_output=True, text=True, env=env, timeout=60)
    log = venv / "bin" / "calls.log"
    return out, log.read_text().splitlines() if log.is_file() else []


def test_python_older_than_311_is_refused_with_the_fix(tmp_path):
    out, _ = _setup(tmp_path, version="3.10.13")
    assert out.returncode == 2
    assert "Python >= 3.11 is needed" in out.stderr and "Python 3.10.13" in out.stderr and "PYTHON=" in out.stderr


def test_main_job_installs_runtime_dependencies_only_and_shows_pips_progress(tmp_path):
    out, calls = _setup(tmp_path)
    assert out.returncode == 0, out.stderr
    installs = [c for c in calls if c.startswith("-m pip install") and "-e" in c.split()]
    assert installs == ["-m pip install --progress-bar on -c constraints.txt -e ."]
    assert "install-test-services" not in out.stdout
    assert "[setup] bash scripts/fetch-plot-scripts.sh" in out.stdout  # dvc plots pages draw offline


def test_test_option_adds_the_test_extras(tmp_path):
    out, calls = _setup(tmp_path, "--test", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert [c for c in calls if "-e" in c.split()] == [
        "-m pip install --dry-run --progress-bar off -c constraints.txt -e .[test]"
    ]
    assert "then: bash scripts/install-test-services.sh" in out.stdout


def test_unknown_option_is_refused(tmp_path):
    out, calls = _setup(tmp_path, "--tset")
    assert out.returncode == 2 and "unknown option --tset" in out.stderr and calls == []
