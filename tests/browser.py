"""Headless Chromium for browser tests: Debian's `chromium` (scripts/install-test-services.sh) driven
by the `playwright` package; the browser Playwright would download is not used. Without them a test
is skipped, except under CI (the CI variable set), where it fails (conftest.need)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background connections (updates, sync, QUIC probes) are refused on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_browser() -> None:
    """Skip (fail under CI) unless Chromium and playwright are both here."""
    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "the playwright package is not installed")
