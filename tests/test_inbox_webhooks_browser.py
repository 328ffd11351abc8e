"""The web inbox's Webhooks panel in a real headless Chromium, driven by selenium.

Like tests/test_inbox_browser.py, on tests/browser.py: the sandbox (and a
webhook receiver on 127.0.0.1) run in a background thread with their own
asyncio loop; a message is sent after the page is open, and its receipts'
delivery attempts must show up in the panel without a reload. Skipped when
Chromium, its driver or selenium is missing, unless ``CI`` is set, where
that is a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from browser import (
    BackgroundLoop,
    By,
    WebDriver,
    WebElement,
    chromium_driver,  # noqa: F401 - the ``driver`` fixture
    open_page,
    wait,
)

import wamsg
from wamsg.sandbox import Fault, Sandbox, running_sandbox

PHONE = "+5511999990000"


class Background(BackgroundLoop[tuple[Sandbox, str, str]]):
    """The sandbox and a webhook receiver, served from a thread with its own loop."""

    sandbox: Sandbox
    base_url: str
    hook_url: str

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    async def _answer(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=500 if self.failing else 200)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[tuple[Sandbox, str, str]]:
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
                yield sandbox, base_url, f"http://127.0.0.1:{port}/hook"
        finally:
            await runner.cleanup()

    def start(self) -> tuple[Sandbox, str, str]:
        running = super().start()
        self.sandbox, self.base_url, self.hook_url = running
        return running


@pytest.fixture(scope="module")
def background() -> Iterator[Background]:
    runner = Background()
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def deliveries(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#deliveries li[data-seq]")


def test_webhook_deliveries_appear_in_the_panel_without_reload(
    background: Background, driver: WebDriver
) -> None:
    sandbox, base_url, hook_url = background.sandbox, background.base_url, background.hook_url
    open_page(driver, base_url + "/")
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
