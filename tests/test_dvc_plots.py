"""`dvc plots show` draws every vega plot with no network: the page loads vega, vega-lite and
vega-embed from .dvc/vega/ (scripts/fetch-plot-scripts.sh, pinned to the versions dvc-render asks
its CDN for) through .dvc/plots.html. A headless Chromium that refuses every request but file://
opens the page; screenshots go to test-artifacts/dvc-plots/.

The browser tests need Chromium and playwright (tests/browser.py) and the fetched scripts.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, need_browser
from conftest import PROJECT, need
from dvc_project import dvc, project_copy

FETCH = PROJECT / "scripts" / "fetch-plot-scripts.sh"
VEGA = PROJECT / ".dvc" / "vega"
SCRIPTS = ("vega", "vega-lite", "vega-embed")
SCREENSHOTS = PROJECT / "test-artifacts" / "dvc-plots"
# The plots dvc.yaml declares: its three top-level plots, the curves, confusion, reliability, robustness.
EXPECTED_PLOTS = {
    "accuracy_per_epoch",
    "loss_per_epoch",
    "accuracy_under_attack",
    "outputs_main_plots_history_csv",
    "outputs_main_plots_confusion_csv",
    "outputs_main_plots_reliability_csv",
    "outputs_main_plots_robustness_adversarial_csv",
    "outputs_main_plots_robustness_corruptions_csv",
}


def _pins() -> dict[str, tuple[str, str, str]]:
    """The script's pins: package -> (version, tarball sha256, min.js sha256)."""
    rows = re.findall(r"^([\w-]+)\s+(\d+\.\d+\.\d+)\s+([0-9a-f]{64})\s+([0-9a-f]{64})$", FETCH.read_text(), re.M)
    return {pkg: (version, tar_sha, js_sha) for pkg, version, tar_sha, js_sha in rows}


def _cdn_versions(html: str) -> dict[str, str]:
    return dict(re.findall(r"cdn\.jsdelivr\.net/npm/([\w-]+)@([\d.]+)", html))


def _fetch(dest: Path, registry: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEST=str(dest), REGISTRY=registry)
    return subprocess.run(["bash", str(FETCH), *args], capture_output=True, text=True, env=env, timeout=300)


def test_pins_are_the_versions_dvc_render_asks_its_cdn_for():
    from dvc.repo import Repo
    from dvc_render.vega import VegaRenderer

    cdn = _cdn_versions(VegaRenderer.SCRIPTS)
    assert set(cdn) == set(SCRIPTS)
    assert {pkg: pin[0] for pkg, pin in _pins().items()} == cdn
    template = (PROJECT / ".dvc" / "plots.html").read_text()
    assert _cdn_versions(template) == cdn  # the online fallback of a page without the local copies
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC's CDN tags stay out
    assert all(f'src="../.dvc/vega/{pkg}.min.js"' in template for pkg in SCRIPTS)
    with Repo(str(PROJECT)) as repo:
        assert repo.config["plots"]["html_template"] == "plots.html"  # relative to .dvc/


def test_fetch_refuses_a_tarball_that_is_not_the_pinned_one(tmp_path):
    version, tar_sha, _ = _pins()["vega"]
    forged = tmp_path / "registry" / "vega" / "-" / f"vega-{version}.tgz"
    forged.parent.mkdir(parents=True)
    body = b"window.vega = {};\n"
    with tarfile.open(forged, "w:gz") as tar:
        info = tarfile.TarInfo("package/build/vega.min.js")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    dest = tmp_path / "vega"
    out = _fetch(dest, (tmp_path / "registry").as_uri())
    assert out.returncode == 1
    got = hashlib.sha256(forged.read_bytes()).hexdigest()
    assert f"has sha256 {got}, expected {tar_sha}; nothing was installed" in out.stderr
    assert list(dest.iterdir()) == []  # no script, no temporary folder


def test_fetch_names_the_fix_when_the_registry_cannot_be_reached(tmp_path):
    out = _fetch(tmp_path / "vega", (tmp_path / "nowhere").as_uri())
    assert out.returncode == 1
    assert "could not download" in out.stderr and "set REGISTRY= to an npm mirror" in out.stderr
    assert list((tmp_path / "vega").iterdir()) == []


def test_fetch_refuses_an_unknown_option(tmp_path):
    out = _fetch(tmp_path / "vega", (tmp_path / "nowhere").as_uri(), "--force")
    assert out.returncode == 2 and "unknown option --force" in out.stderr
    assert not (tmp_path / "vega").exists()


def _need_scripts() -> None:
    need(
        all((VEGA / f"{pkg}.min.js").is_file() for pkg in SCRIPTS),
        f"no vega scripts in {VEGA} (bash scripts/fetch-plot-scripts.sh)",
    )


def test_fetched_scripts_match_their_pins_and_are_kept_offline(tmp_path):
    _need_scripts()
    dest = tmp_path / "vega"
    shutil.copytree(VEGA, dest)
    for pkg, (_, _, js_sha) in _pins().items():
        assert hashlib.sha256((dest / f"{pkg}.min.js").read_bytes()).hexdigest() == js_sha
    out = _fetch(dest, (tmp_path / "nowhere").as_uri())  # nothing to download: no registry needed
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("already here") == 3


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory) -> Path:
    """`dvc plots show` in a copy of the project with the fetched scripts: dvc_plots/index.html."""
    need_browser()
    _need_scripts()
    project = project_copy(tmp_path_factory.mktemp("dvc-plots") / "project")
    shutil.copytree(VEGA, project / ".dvc" / "vega")
    out = dvc(project, "plots", "show")
    assert out.returncode == 0, out.stdout + out.stderr
    page = project / "dvc_plots" / "index.html"
    assert "cdn.jsdelivr.net" not in page.read_text().split("typeof vegaEmbed")[0]  # local scripts come first
    return page


def _open_offline(path: Path, screenshot: str) -> dict:
    """Open `path` in Chromium with every request but file:// aborted; what the page drew."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    errors: list[str] = []

    def only_files(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)  # a busy 2-core machine
            page.route("**/*", only_files)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(path.as_uri(), wait_until="load")
            plots = page.eval_on_selector_all("body div[id]:not(#vega-missing)", "els => els.map(e => e.id)")
            drawn = """ids => ids.filter(id => {
                const el = document.getElementById(id).querySelector("svg, canvas");
                return el && el.getBoundingClientRect().width > 50 && el.getBoundingClientRect().height > 50;
            })"""
            if page.evaluate("typeof vegaEmbed") != "undefined":  # vega-embed draws after load
                page.wait_for_function(f"ids => ({drawn})(ids).length === ids.length", arg=plots)
            result = {
                "plots": plots,
                "drawn": page.evaluate(drawn, plots),
                "note": page.text_content("#vega-missing") if page.query_selector("#vega-missing") else None,
                "blocked": blocked,
                "errors": errors,
            }
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
        finally:
            browser.close()
    return result


def test_every_vega_plot_draws_with_the_network_blocked(plots_page):
    seen = _open_offline(plots_page, "offline.png")
    assert set(seen["plots"]) >= EXPECTED_PLOTS, seen["plots"]
    assert seen["drawn"] == seen["plots"], set(seen["plots"]) - set(seen["drawn"])
    assert seen["note"] is None and seen["errors"] == []
    assert seen["blocked"] == []  # nothing asked for the network: no CDN, no fallback
    assert (SCREENSHOTS / "offline.png").stat().st_size > 50_000


def test_a_page_that_cannot_reach_the_scripts_says_so_instead_of_drawing_nothing(plots_page):
    """The check above can fail: the same page one folder further down finds no ../.dvc/vega/ and no CDN."""
    elsewhere = plots_page.parent / "deeper" / "index.html"
    elsewhere.parent.mkdir()
    shutil.copy(plots_page, elsewhere)
    seen = _open_offline(elsewhere, "scripts-missing.png")
    assert set(seen["plots"]) >= EXPECTED_PLOTS and seen["drawn"] == []
    assert "bash scripts/fetch-plot-scripts.sh" in (seen["note"] or "")
    assert any("cdn.jsdelivr.net/npm/vega@5.20.2" in url for url in seen["blocked"])  # tried, refused
