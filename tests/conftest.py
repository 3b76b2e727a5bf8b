"""Shared fixtures: the real MNIST, prepared once per test session."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist, each worker and every command it starts get their share of the cores:
    torch's threads in two workers at once would otherwise spin against each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


_share_the_cores_between_workers()


def _ctrl_c_as_at_a_terminal() -> None:
    """A pytest started in the background (`bash .ci/run &`, nohup) inherits SIGINT ignored, and so
    would every command it starts: the tests that press Ctrl-C in one would see it ignored. Python
    leaves an inherited SIG_IGN alone, so put back its usual handler (commands then start with SIGINT
    at its default, as from a terminal)."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_ctrl_c_as_at_a_terminal()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow tests first, each file's own order kept: the workers (--dist loadfile,
    in collection order) start the long files at once, and the short ones fill the gaps at the end."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A prepared data/mnist folder: the project's own if `dvc repro data` ran, else fetched now."""
    from pipeline.data.mnist import is_prepared, prepare

    own = PROJECT / "data" / "mnist"
    if is_prepared(own):
        return own
    return prepare(tmp_path_factory.mktemp("data") / "mnist", source="auto")


@pytest.fixture(scope="session")
def idx_dir(mnist_root, tmp_path_factory) -> Path:
    """The four official IDX files (two gzip-compressed), rebuilt from the prepared tensors."""
    from pipeline.data.mnist import encode_idx, load_split

    folder = tmp_path_factory.mktemp("idx")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_split(mnist_root, split)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(encode_idx(images.numpy()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels.numpy()), 1))
    return folder


def run_module(
    module: str, *args: str, cwd: Path = PROJECT, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run `python -m module args` as a user would, returning the finished process."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=_command_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _command_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # never the user's store
    return env | {"PYTHONUNBUFFERED": "1", **(extra or {})}


_NOTE_IMPORTS = """
import atexit, json, runpy, sys
note, module, heavy = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
sys.argv = [module, *sys.argv[4:]]
atexit.register(lambda: open(note, "w").write(json.dumps([m for m in heavy if m in sys.modules])))
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
HEAVY_MODULES = ("torch", "lightning", "mlflow")


def run_module_noting_imports(
    module: str, *args: str, cwd: Path = PROJECT, timeout: int = 120
) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -m module args` as run_module does; also return which of HEAVY_MODULES it had
    imported when it exited. What a quick answer must not wait for, checked without a clock."""
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "imported.json"
        out = subprocess.run(
            [sys.executable, "-c", _NOTE_IMPORTS, str(note), module, ",".join(HEAVY_MODULES), *args],
            cwd=cwd,
            env=_command_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert note.is_file(), f"{module} exited without running its exit handlers:\n{out.stderr[-2000:]}"
        return out, set(json.loads(note.read_text()))


def need(ok: bool, why: str) -> None:
    """Skip a test whose system service is missing; in CI (CI set) fail instead: it must run there."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run this test: bash scripts/install-test-services.sh)")
        pytest.skip(why)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(
    cmd: list, health_url: str, cwd: Path, env: dict | None = None, log: Path | None = None, timeout: float = 180
):
    """Start a server process in its own process group, wait for health_url to answer 200, stop it after."""
    import signal
    import time
    import urllib.request

    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 -- closed after the yield
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{cmd[:4]} exited with {proc.returncode} before answering")
            try:
                with urllib.request.urlopen(health_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{health_url} did not answer within {timeout}s") from None
                time.sleep(0.5)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: this process group only
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it had exited already
            pass
        if log:
            out.close()
