"""The MLflow UI, driven in a real headless Chromium: the experiment opens on its list of training runs
(from the link `pipeline-ui` prints, and by hand through the UI's "Model training" switch), then a run
with its parameters, its metrics tab (the per-epoch curves first) and an image artifact, the Models
view with each registered version's test accuracy, then two runs compared. Screenshots of every step
go to test-artifacts/ui-browser/.

Needs Debian's `chromium` (scripts/install-test-services.sh) and the `playwright` package; the
browser Playwright would download is not used. Without them the test is skipped, except under CI
(the CI variable set), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from conftest import PROJECT, free_port, need, run_module, run_module_noting_imports, serving

# A screenshot of every step, kept for people to look at (ignored by git; CI may keep it as an artifact).
SCREENSHOTS = PROJECT / "test-artifacts" / "ui-browser"
TINY = ["data.train_subset=2000", "trainer.max_epochs=2"]
# Robustness, shift and OOD numbers for the first run: the sections the curves must come before.
ROBUSTNESS = [
    "robustness=quick",
    "robustness.after_training=true",
    "robustness.n_images=200",
    "robustness.ood.n_images=200",
    "robustness.corruptions=[rotate,fog]",
]


def _non_loopback_address() -> str | None:
    """An address of this machine other than loopback (the one its default route uses), if any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent; it only picks a source address
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, mnist_root):
    """Two tiny runs in one store (seeds 1 and 2), each a registered version; the first also measured
    for robustness."""
    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "the playwright package is not installed")
    tmp = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{tmp}/mlflow.db"
    runs = []
    for seed, extra in ((1, ROBUSTNESS), (2, [])):
        out = run_module(
            "pipeline.stages.train",
            *TINY,
            *extra,
            f"seed={seed}",
            f"run_dir={tmp}/run{seed}",
            f"tracking.uri={uri}",
            f"data.root={mnist_root}",
            "tracking.log_model=true",
            "tracking.register=true",
            cwd=tmp,
        )
        assert out.returncode == 0, out.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("mnist")
    runs = sorted(client.search_runs([exp.experiment_id]), key=lambda r: r.data.params["seed"])
    assert [r.data.params["seed"] for r in runs] == ["1", "2"]
    return tmp, uri, exp.experiment_id, runs


@pytest.fixture(scope="module")
def ui(two_runs):
    """`python -m pipeline.stages.ui` on the runs' store, on a free loopback port; stopped afterwards."""
    tmp, uri, _, _ = two_runs
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "pipeline.stages.ui", "--tracking-uri", uri, "--port", str(port), "--workers", "1"]
    with serving(cmd, f"{base}/health", cwd=tmp, env=env, log=tmp / "ui.log", timeout=120) as server:
        yield base, port, tmp / "ui.log", server.pid


@pytest.mark.slow
def test_ui_command_prints_the_url_and_binds_loopback_only(ui):
    base, port, log, _ = ui
    assert f"open {base}" in log.read_text()
    other = _non_loopback_address()
    if other is None:
        pytest.skip("this machine has no non-loopback address to try")
    with socket.socket() as s:
        s.settimeout(3)
        assert s.connect_ex((other, port)) != 0, f"the UI answers on {other}:{port}, not only on loopback"


def _commands_in_group(pgid: int) -> list[str]:
    """The command lines of the processes in a process group (the server and everything it started)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getpgid(int(proc.name)) == pgid:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):  # gone meanwhile
            continue
    return found


@pytest.mark.slow
def test_ui_starts_no_genai_job_runner(ui):
    """MLflow's server would start seven job-runner processes for GenAI jobs; pipeline-ui asks for none."""
    *_, pgid = ui
    deadline = time.monotonic() + 5  # the runner starts in a thread after the server answers
    while time.monotonic() < deadline:
        commands = _commands_in_group(pgid)
        assert any(" server " in c for c in commands), commands
        assert not [c for c in commands if "huey" in c]
        time.sleep(0.5)


def test_server_env_leaves_the_job_runner_to_the_user():
    from pipeline.stages.ui import server_env

    assert server_env({})["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert server_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
    assert server_env({})["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_ui_help_loads_no_heavy_library_and_needs_no_store(tmp_path):
    out, imported = run_module_noting_imports("pipeline.stages.ui", "--help", cwd=tmp_path)
    assert out.returncode == 0 and "127.0.0.1" in out.stdout
    assert not imported, imported  # the server is MLflow's own process; --help needs none of it
    out = run_module("pipeline.stages.ui", cwd=tmp_path)  # no mlflow.db here: a clear message, not a blank UI
    assert out.returncode == 2 and "does not exist yet" in out.stderr
    out = run_module("pipeline.stages.ui", "--dry-run", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", cwd=tmp_path)
    assert "--host 127.0.0.1" in out.stdout and f"file://{tmp_path}/mlartifacts" in out.stdout


@pytest.mark.slow
def test_browser_opens_the_experiment_on_its_training_runs_then_a_run_and_compares_two(two_runs, ui):
    from playwright.sync_api import expect, sync_playwright

    from pipeline.data.mnist import dataset_digest

    tmp, _, exp_id, (run1, run2) = two_runs
    base, _, log, _ = ui
    shots = SCREENSHOTS
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    step = iter(range(1, 100))

    def shot(page, name: str, full_page: bool = False) -> Path:
        path = shots / f"{next(step):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def on_training_runs(page) -> None:
        """The experiment's list of training runs: both runs and MNIST in the Dataset column, no trace pages."""
        page.wait_for_url(f"**/#/experiments/{exp_id}/runs**")
        close = page.get_by_role("button", name="Close", exact=True)  # the assistant side panel
        if close.count():
            close.first.click()
        for run in (run1, run2):
            expect(page.get_by_role("link", name=run.info.run_name, exact=True)).to_be_visible()
        expect(page.get_by_text(f"mnist ({dataset_digest()[:8]}").first).to_be_visible()
        assert "/overview" not in page.url and "/traces" not in page.url

    timeout = 60_000  # a cold React app on a busy 2-core machine
    expect.set_options(timeout=timeout)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(timeout)

            # The link `pipeline-ui` prints opens the experiment on its training runs, in a fresh browser.
            link = re.search(r"the training runs: (\S+)", log.read_text()).group(1)
            assert link == f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning"
            page.goto(link)
            on_training_runs(page)
            shot(page, "printed-link-opens-the-training-runs")

            # By hand: home page -> the "Model training" switch at the top left -> Experiments -> mnist.
            page.goto(f"{base}/")
            expect(page.get_by_text("Model training", exact=True)).to_be_visible()
            shot(page, "home")
            page.get_by_text("Model training", exact=True).click()
            page.get_by_role("link", name="Experiments", exact=True).click()
            expect(page.get_by_role("link", name="mnist", exact=True).first).to_be_visible()
            shot(page, "experiments")
            page.get_by_role("link", name="mnist", exact=True).first.click()
            on_training_runs(page)
            shot(page, "experiment-opens-on-training-runs")

            # Open the first run: its page shows the description (the exact command) and parameters.
            page.get_by_role("link", name=run1.info.run_name, exact=True).click()
            page.wait_for_url(f"**/#/experiments/{exp_id}/runs/{run1.info.run_id}**")
            expect(page.get_by_text("Reproduce with:")).to_be_visible()
            expect(page.get_by_text(run1.data.tags["mlflow.note.content"].split("\n")[-1].strip())).to_be_visible()
            params = page.get_by_role("table").filter(has_text="model.hidden")
            expect(params.first).to_be_visible()
            for name, value in (
                ("model.hidden", "[128, 64]"),
                ("data.train_subset", "2000"),
                ("model.parameters", "109386"),
            ):
                row = page.get_by_role("row").filter(has_text=name).first
                expect(row).to_contain_text(value)
            expect(page.get_by_role("row").filter(has_text="test/acc").first).to_contain_text(
                str(run1.data.metrics["test/acc"])[:5]
            )
            expect(page.get_by_text("mnist-mlp").first).to_be_visible()  # the registered model
            run_png = shot(page, "run", full_page=True)

            # The metrics tab opens on the per-epoch curves (step = epoch): curves/train and curves/val
            # are the first sections, on screen without searching; robustness, shift and OOD follow.
            page.get_by_role("tab", name="Model metrics").click()
            sections = ["curves/train", "curves/val", "ood", "robust", "shift", "test", "time", "val"]
            headers = [page.get_by_text(name, exact=True).first for name in sections]
            for header in headers:
                expect(header).to_be_visible()
            tops = [header.bounding_box()["y"] for header in headers]
            assert tops == sorted(tops), dict(zip(sections, tops, strict=True))
            for curve in ("curves/train/loss", "curves/val/acc"):
                expect(page.get_by_text(f"{run1.info.run_name} ({curve})").first).to_be_in_viewport()
            chart = page.locator(".js-plotly-plot").filter(has_text="Step").first
            expect(chart).to_be_in_viewport()
            assert chart.locator(".scatterlayer .trace").count() >= 1
            shot(page, "metrics-tab-opens-on-the-curves")

            # An image artifact: the confusion matrix the evaluation stage logged.
            page.get_by_role("tab", name="Artifacts").click()
            page.get_by_text("evaluation", exact=True).first.click()
            page.get_by_text("confusion.png", exact=True).first.click()
            image = page.locator("img[src^='blob:']").first
            expect(image).to_be_visible()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            shown = tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))
            assert shown == _png_size(tmp / "run1" / "figures" / "evaluation" / "confusion.png")
            shot(page, "artifact")

            # The Models view: each registered version's logged model with its test accuracy, measured on
            # the MNIST test split (the columns narrowed to that dataset's metrics).
            page.goto(f"{base}/#/experiments/{exp_id}/models")
            expect(page.get_by_role("columnheader", name="Registered models")).to_be_visible()
            close = page.get_by_role("button", name="Close", exact=True)  # the assistant side panel
            if close.count():
                close.first.click()
            page.get_by_role("button", name="Columns").click()
            menu = page.get_by_role("menu")
            for hidden in ("Status", "Logged from", "Source run", "Parameters", "No dataset"):
                menu.get_by_text(hidden, exact=True).click()
            for hidden in ("Dataset: fashion-mnist-test-200 (", "Dataset: mnist-c (", "Dataset: mnist-test-200 ("):
                menu.get_by_text(hidden).click()
            page.keyboard.press("Escape")
            expect(page.get_by_role("columnheader", name="test/acc", exact=True)).to_be_visible()
            for version, run in ((1, run1), (2, run2)):
                row = page.get_by_role("row").filter(has_text=f"v{version}").filter(has_text="mnist-test (#")
                expect(row).to_contain_text(str(run.data.metrics["test/acc"]))
            shot(page, "models-test-accuracy-per-version")

            # Compare the two runs: select both in the runs table, press Compare.
            page.goto(link)
            expect(page.get_by_role("link", name=run2.info.run_name, exact=True)).to_be_visible()
            page.get_by_role("checkbox", name="Select all runs").check()
            page.get_by_role("button", name="Compare", exact=True).click()
            page.wait_for_url("**/#/compare-runs?runs=**")
            assert run1.info.run_id in page.url and run2.info.run_id in page.url
            expect(page.get_by_text("Comparing 2 Runs")).to_be_visible()
            seed_row = page.get_by_role("row").filter(has=page.get_by_text("seed", exact=True)).first
            expect(seed_row).to_contain_text("1")
            expect(seed_row).to_contain_text("2")
            fingerprints = page.get_by_role("row").filter(has_text="config.fingerprint").first
            for run in (run1, run2):
                expect(fingerprints).to_contain_text(run.data.params["config.fingerprint"])
            shot(page, "compare", full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshots: {shots}")
    assert run_png.stat().st_size > 20_000
    assert len(list(shots.glob("*.png"))) == 9


@pytest.mark.slow
def test_basic_auth_ui_refuses_anonymous_requests(two_runs):
    """`python -m pipeline.stages.ui --basic-auth`: no password or a wrong one -> 401; the admin's -> 200."""
    import base64
    import urllib.error

    pytest.importorskip("flask_wtf", reason="MLflow's auth extra is not installed (pip install 'mlflow[auth]')")
    tmp, uri, _, _ = two_runs
    folder = tmp / "auth"
    folder.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    refused = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.ui", "--basic-auth", "--tracking-uri", uri],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "MLFLOW_AUTH_ADMIN_PASSWORD" in refused.stderr
    env["MLFLOW_AUTH_ADMIN_PASSWORD"] = "a-long-test-password"
    cmd = [
        sys.executable,
        "-m",
        "pipeline.stages.ui",
        "--basic-auth",
        "--tracking-uri",
        uri,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=mnist"

    def status(user: str | None, password: str | None) -> int:
        request = urllib.request.Request(api)
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    with serving(cmd, f"http://127.0.0.1:{port}/health", cwd=folder, env=env, timeout=120):
        assert status(None, None) == 401
        assert status("admin", "wrong") == 401
        assert status("admin", "a-long-test-password") == 200
        assert (folder / "basic_auth.db").is_file()
