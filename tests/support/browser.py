"""A real headless browser for the portal's tests: Debian's ``chromium`` driven through Debian's
``chromium-driver`` by Selenium (no browser or driver is downloaded: both come from apt, installed here
when missing, as root). Screenshots go to ``var/screenshots`` for people to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.debian import apt_install

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
_PACKAGES = ("chromium", "chromium-driver")


def _installed() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _install() -> tuple[str, str]:
    found = _installed()
    if found:
        return found
    apt_install(_PACKAGES, "the browser tests")
    found = _installed()
    assert found, "chromium was installed but is not on PATH"
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (selenium WebDriver), 1280x1000, shared by the session's tests."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _install()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


def screenshot(chrome: object, name: str) -> Path:
    """Keep what the page looks like now as ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    chrome.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def sign_in(chrome: object, page_url: str, token: str) -> None:
    """Open a portal page, sign in with ``token`` as a user does (the prompt of the "sign in" button),
    and wait for the page to have loaded again, signed in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver: Any = chrome
    driver.get(page_url)
    driver.execute_script("window.sessionStorage.clear()")  # whoever was signed in before
    driver.get(page_url)
    WebDriverWait(driver, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    )
    driver.find_element(By.ID, "sign-in").click()
    prompt = driver.switch_to.alert
    prompt.send_keys(token)
    prompt.accept()
    WebDriverWait(driver, 60).until(lambda b: b.find_element(By.ID, "who").text.startswith("signed in as"))
    WebDriverWait(driver, 60).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
    )
