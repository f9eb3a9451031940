"""Headless Chromium (Debian's chromium + chromium-driver) driven by selenium, as the browser tests use it."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver


@contextlib.contextmanager
def chromium(page_load_timeout_s: float, capture_logs: bool = False) -> Iterator[WebDriver]:
    """A fresh headless Chromium with its own profile; `capture_logs` keeps console and network logs."""
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver_path, "run scripts/install_test_system_deps.sh (Debian chromium + chromium-driver)"
    profile = tempfile.mkdtemp(prefix="eft-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # Without the background-networking flags Chromium keeps calling home, refused on an offline machine.
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    if capture_logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(page_load_timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
