"""Headless Chromium for the report tests, through Selenium and Debian's chromium + chromium-driver.

`browser` (session fixture) is a Browser: open a local file, read what a reader sees (computed styles,
layout through `js`), list the network requests the page made, and print it to PDF. When chromium or the
driver is missing, every browser test skips and the session ends with one summary line naming what to install
(see `pytest_terminal_summary` in conftest.py); with COSTKIT_REQUIRE_BROWSER=1 (set by .ci/run) they fail
instead, so CI cannot pass them by skipping.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMEDRIVER = Path(os.environ.get("COSTKIT_CHROMEDRIVER", "/usr/bin/chromedriver"))
CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = ("browser tests skipped: install Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver) and pip's selenium and pypdf (the test extra)")
WIDTH, HEIGHT = 1280, 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}")

# Set when a browser test skipped for want of chromium; conftest prints it once.
MISSING: list[str] = []


def chromium_binary() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def missing_pieces() -> list[str]:
    """What is missing to run the browser tests (empty when everything is there)."""
    out = []
    if chromium_binary() is None:
        out.append("chromium")
    if not CHROMEDRIVER.exists():
        out.append("chromium-driver")
    for module in ("selenium", "pypdf"):
        try:
            __import__(module)
        except ImportError:
            out.append(module)
    return out


@dataclass
class Browser:
    driver: object

    def open(self, path: Path) -> None:
        """Load a local file, wait for it, and forget the requests of any earlier page."""
        self.requests()   # drain the performance log
        self.driver.get(Path(path).resolve().as_uri())

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def requests(self) -> list[str]:
        """The URLs the browser asked for since the last call (Network.requestWillBeSent events)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
        return urls

    def pdf(self) -> bytes:
        """The loaded page printed to PDF with its own @page rules (A4 landscape in the reports)."""
        out = self.driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True,
                                                               "preferCSSPageSize": True})
        return base64.b64decode(out["data"])


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page of a PDF."""
    from pypdf import PdfReader
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


def _start(profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_binary()
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_window_size(WIDTH, HEIGHT)
    # The window is 1280 px wide outside; make the page's own viewport 1280 px, as a reader's screen.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


@pytest.fixture(scope="session")
def browser():
    missing = missing_pieces()
    if missing and os.environ.get("COSTKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"COSTKIT_REQUIRE_BROWSER=1 but {', '.join(missing)} missing: " + INSTALL_HINT)
    if missing:
        MISSING.extend(missing)
        pytest.skip(INSTALL_HINT + f" (missing: {', '.join(missing)})")
    profile = tempfile.mkdtemp(prefix="costkit-chromium-")
    driver = _start(profile)
    try:
        yield Browser(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def rgb(css_colour: str) -> tuple[int, ...]:
    """'rgb(1, 2, 3)' / 'rgba(1, 2, 3, 0)' -> (1, 2, 3[, 0])."""
    return tuple(int(float(x)) for x in re.findall(r"[\d.]+", css_colour))
