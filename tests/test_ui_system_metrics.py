"""The MLflow UI in a real headless Chromium: a training run's *System metrics* tab shows the CPU and
memory the run recorded while it trained and was evaluated. A screenshot goes to
test-artifacts/ui-system-metrics/.

The runs and the UI server are test_ui_browser.py's fixtures (two tiny runs, `pipeline-ui` on their
store); here the runs sample every 0.5 s (MLflow's MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, which
wins over tracking.system_metrics_interval), so that even their short trainings leave a curve.
Skipped without Chromium or playwright, failed under CI, as test_ui_browser.py says.
"""

from __future__ import annotations

import shutil

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from conftest import PROJECT
from test_ui_browser import two_runs, ui  # noqa: F401  (fixtures used by name)

SCREENSHOTS = PROJECT / "test-artifacts" / "ui-system-metrics"
CPU = "system/cpu_utilization_percentage"
MEMORY = "system/system_memory_usage_megabytes"


@pytest.fixture(scope="module", autouse=True)
def sample_often():
    """Set before the module's runs train (autouse fixtures of a scope come first); restored after."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
        yield


@pytest.mark.slow
def test_a_run_shows_its_system_metrics_in_the_ui(two_runs, ui):  # noqa: F811  (the imported fixtures)
    from mlflow import MlflowClient
    from playwright.sync_api import expect, sync_playwright

    _, uri, exp_id, (run1, _) = two_runs
    base, *_ = ui
    cpu = MlflowClient(uri).get_metric_history(run1.info.run_id, CPU)
    assert len(cpu) >= 2, "the run recorded too few CPU samples to draw"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)

    timeout = 60_000  # a cold React app on a busy 2-core machine
    expect.set_options(timeout=timeout)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.set_default_timeout(timeout)
            page.goto(f"{base}/#/experiments/{exp_id}/runs/{run1.info.run_id}")
            expect(page.get_by_text("Reproduce with:")).to_be_visible()
            close = page.get_by_role("button", name="Close", exact=True)  # the assistant side panel
            if close.count():
                close.first.click()
            page.get_by_role("tab", name="System metrics").click()
            # One chart per system metric against time, each with the run's line: CPU and memory among them.
            for metric in (CPU, MEMORY):
                expect(page.get_by_role("heading", name=metric.removeprefix("system/"), exact=True)).to_be_visible()
                expect(page.get_by_text(f"{run1.info.run_name} ({metric})", exact=True).first).to_be_visible()
            chart = page.locator(".js-plotly-plot").filter(has_text="Time").first
            expect(chart).to_be_visible()
            assert chart.locator(".scatterlayer .trace").count() >= 1
            path = SCREENSHOTS / "01-system-metrics-tab.png"
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshot: {path}")
    assert path.stat().st_size > 20_000
