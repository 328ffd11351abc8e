"""The web inbox's Webhooks panel in a real headless Chromium, driven by selenium.

Like tests/test_inbox_browser.py: the sandbox (and a webhook receiver on
127.0.0.1) run in a background thread with their own asyncio loop; a message
is sent after the page is open, and its receipts' delivery attempts must
show up in the panel without a reload. Skipped when Chromium or its driver
is missing, unless ``CI`` is set, where that is a failure.
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
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

import wamsg
from wamsg.sandbox import Fault, Sandbox, running_sandbox

_IN_CI = bool(os.environ.get("CI"))

try:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - depends on the machine
    if _IN_CI:
        raise
    pytest.skip("selenium is not installed", allow_module_level=True)

CHROMIUM = os.environ.get("WAMSG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("WAMSG_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
PHONE = "+5511999990000"
T = TypeVar("T")

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    _missing = f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: chromium, chromium-driver)"
    if _IN_CI:
        raise RuntimeError(f"CI is set but the inbox browser tests cannot run: {_missing}")
    pytest.skip(_missing, allow_module_level=True)


class Background:
    """The sandbox and a webhook receiver, served from a thread with its own loop."""

    def __init__(self) -> None:
        self._ready: concurrent.futures.Future[tuple[Sandbox, str, str]] = (
            concurrent.futures.Future()
        )
        self._thread = threading.Thread(target=self._main, name="sandbox", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.failing = False

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _answer(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=500 if self.failing else 200)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._answer)
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            box = Sandbox(seed=1, time_scale=0.05)
            async with running_sandbox(sandbox=box) as (sandbox, base_url):
                self._ready.set_result((sandbox, base_url, f"http://127.0.0.1:{port}/hook"))
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise
        finally:
            await runner.cleanup()

    def start(self) -> None:
        self._thread.start()
        self.sandbox, self.base_url, self.hook_url = self._ready.result(timeout=10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run ``coro`` on the sandbox's loop and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


def chromium(user_data_dir: str) -> WebDriver:
    """The screenshot script's headless Chromium, as tests/test_inbox_browser.py starts it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    try:
        from inbox_screenshot import chromium as start_chromium
    finally:
        sys.path.pop(0)
    driver = start_chromium(CHROMIUM, CHROMEDRIVER, user_data_dir)
    driver.set_script_timeout(15)
    return driver


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    runner = Background()
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
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
    return WebDriverWait(
        driver, seconds, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )


def deliveries(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#deliveries li[data-seq]")


def test_webhook_deliveries_appear_in_the_panel_without_reload(
    background: Background, driver: WebDriver
) -> None:
    sandbox, base_url, hook_url = background.sandbox, background.base_url, background.hook_url
    driver.get(base_url + "/")
    wait(driver).until(
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "live"
    )
    driver.execute_script("window.__notReloaded = true;")
    assert deliveries(driver) == []
    assert driver.find_element(By.CSS_SELECTOR, "#deliveries [data-none]").is_displayed()

    async def send() -> wamsg.SendResult:
        sandbox.add_webhook(hook_url, provider="waha", secret="k")
        async with wamsg.Client("waha", **sandbox.credentials("waha")) as client:
            return await client.send_text(PHONE, "receipts, please")

    background.run(send())
    wait(driver).until(lambda d: len(deliveries(d)) == 3)
    newest, middle, oldest = deliveries(driver)  # newest first
    assert [i.get_attribute("data-label") for i in (oldest, middle, newest)] == [
        "sent",
        "delivered",
        "read",
    ]
    for item in (oldest, middle, newest):
        assert item.get_attribute("data-provider") == "waha"
        assert item.get_attribute("data-event") == "message.ack"
        assert item.get_attribute("data-attempt") == "1"
        assert item.get_attribute("data-outcome") == "200"
        assert "attempt 1" in item.text
        assert " ms" in item.text
    assert not driver.find_elements(By.CSS_SELECTOR, "#deliveries [data-none]")

    # A failing receiver: the retries and the fault show too.
    background.failing = True
    sandbox.add_fault(Fault(kind="bad_signature", provider="waha", event="message"))

    async def inbound() -> None:
        sandbox.inbound("waha", from_="+5511988887777", text="<b>not markup</b>")

    background.run(inbound())
    wait(driver).until(lambda d: len(deliveries(d)) >= 5)
    retry = deliveries(driver)[0]
    assert retry.get_attribute("data-event") == "message"
    assert retry.get_attribute("data-outcome") == "500"
    assert "failed" in (retry.get_attribute("class") or "")
    assert "fault bad_signature" in retry.text
    assert int(retry.get_attribute("data-attempt") or 0) >= 2
    assert driver.find_elements(By.CSS_SELECTOR, "#deliveries b") == []
    assert driver.execute_script("return window.__notReloaded === true")
    background.failing = False
