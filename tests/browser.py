"""What the browser tests share: headless Chromium, driven by selenium, on a sandbox.

Importing this module skips the importing test module when selenium, Debian's
``chromium`` or ``chromium-driver`` is missing, unless ``CI`` is set, where
that is a failure (the ImportError, or a RuntimeError). The selenium names the
tests use are re-exported from here so that the check comes first.

The things the browser loads are served from a thread with its own asyncio
loop (:class:`BackgroundLoop`), since selenium blocks. :func:`chromium_driver`
is the module-scoped headless Chromium fixture ``driver`` (import it to use
it); :func:`wait`, :func:`status` and :func:`open_page` wait on the inbox
page, which re-renders as data arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

_IN_CI = bool(os.environ.get("CI"))

try:
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - depends on the machine
    if _IN_CI:
        raise
    pytest.skip("selenium is not installed", allow_module_level=True)

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "BackgroundLoop",
    "By",
    "NoAlertPresentException",
    "Select",
    "WebDriver",
    "WebElement",
    "chromium",
    "chromium_driver",
    "open_page",
    "status",
    "wait",
]

CHROMIUM = os.environ.get("WAMSG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("WAMSG_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
R = TypeVar("R")
T = TypeVar("T")

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    _missing = f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: chromium, chromium-driver)"
    if _IN_CI:
        raise RuntimeError(f"CI is set but the inbox browser tests cannot run: {_missing}")
    pytest.skip(_missing, allow_module_level=True)


class BackgroundLoop(Generic[R]):
    """``serving()`` entered in a thread with its own event loop, until :meth:`stop`.

    Subclasses say what is served; :meth:`start` gives what ``serving()``
    yields, and :meth:`run` runs a coroutine on that loop.
    """

    def __init__(self) -> None:
        self._ready: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="sandbox", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def serving(self) -> AbstractAsyncContextManager[R]:
        """What to serve, entered and exited on the background loop."""
        raise NotImplementedError

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self.serving() as running:
                self._ready.set_result(running)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def start(self) -> R:
        self._thread.start()
        return self._ready.result(timeout=10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run ``coro`` on the sandbox's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


def chromium(user_data_dir: str) -> WebDriver:
    """The screenshot script's headless Chromium: one browser setup for both."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    try:
        from inbox_screenshot import chromium as start_chromium
    finally:
        sys.path.pop(0)
    driver = start_chromium(CHROMIUM, CHROMEDRIVER, user_data_dir)
    driver.set_script_timeout(15)
    return driver


@pytest.fixture(scope="module", name="driver")
def chromium_driver() -> Iterator[WebDriver]:
    """The ``driver`` fixture: a headless Chromium per test module that imports it."""
    saved = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never download anything
    with tempfile.TemporaryDirectory(prefix="wamsg-chromium-") as profile:
        browser = chromium(profile)
        try:
            yield browser
        finally:
            browser.quit()
            if saved is None:
                os.environ.pop("SE_OFFLINE", None)
            else:
                os.environ["SE_OFFLINE"] = saved


def wait(driver: WebDriver, seconds: float = 8) -> WebDriverWait[WebDriver]:
    # The page re-renders as messages arrive: an element found a moment ago may be gone.
    return WebDriverWait(
        driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )


def status(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "status").get_attribute("data-state"))


def open_page(driver: WebDriver, url: str) -> WebDriver:
    """Load the inbox page at ``url`` and wait for its first poll.

    Sets ``window.__notReloaded``: if the page reloaded, it would be gone.
    """
    driver.get(url)
    wait(driver).until(lambda d: status(d) == "live")
    driver.execute_script("window.__notReloaded = true;")
    return driver
