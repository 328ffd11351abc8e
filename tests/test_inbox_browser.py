"""The sandbox's web inbox (GET /) in a real headless Chromium, driven by selenium.

The sandbox runs in a background thread with its own asyncio loop (selenium
blocks); messages are sent through ``wamsg.Client`` over real HTTP on
127.0.0.1 after the page is open, and must show up without a reload. Needs
Debian's ``chromium`` and ``chromium-driver``: the module is skipped when they
(or selenium) are missing, unless ``CI`` is set, where that is a failure. The
browser, the background loop and the wait helpers are tests/browser.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from browser import (
    BackgroundLoop,
    By,
    NoAlertPresentException,
    Select,
    WebDriver,
    WebElement,
    chromium_driver,  # noqa: F401 - the ``driver`` fixture
    open_page,
    wait,
)

import wamsg
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.testing import MEDIA as KIT_MEDIA

MEDIA = KIT_MEDIA
UPLOAD_PROVIDERS = ("gowa", "waha", "wuts")
PHONE = "+5511999990000"
OTHER_PHONE = "+5511988887777"


class BackgroundSandbox(BackgroundLoop[tuple[Sandbox, str]]):
    """``running_sandbox`` served from a thread with its own event loop."""

    def serving(self) -> AbstractAsyncContextManager[tuple[Sandbox, str]]:
        return running_sandbox(seed=1)


class Gateway:
    """The running sandbox, and a synchronous way to send through it."""

    def __init__(self, runner: BackgroundSandbox, sandbox: Sandbox, base_url: str) -> None:
        self.runner = runner
        self.sandbox = sandbox
        self.base_url = base_url

    def send_text(self, provider: str, to: str, text: str) -> wamsg.SendResult:
        async def go() -> wamsg.SendResult:
            async with wamsg.Client(provider, **self.sandbox.credentials(provider)) as client:
                return await client.send_text(to, text)

        return self.runner.run(go())

    def send_image(
        self, provider: str, to: str, image: str | Path, caption: str | None = None
    ) -> wamsg.SendResult:
        async def go() -> wamsg.SendResult:
            async with wamsg.Client(provider, **self.sandbox.credentials(provider)) as client:
                return await client.send_image(to, image, caption=caption)

        return self.runner.run(go())


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    runner = BackgroundSandbox()
    sandbox, base_url = runner.start()
    try:
        yield Gateway(runner, sandbox, base_url)
    finally:
        runner.stop()


@pytest.fixture
def inbox(gateway: Gateway, driver: WebDriver) -> WebDriver:
    """The inbox page, freshly loaded on an empty sandbox, its first poll done."""
    return open_inbox(gateway, driver)


def open_inbox(gateway: Gateway, driver: WebDriver) -> WebDriver:
    gateway.sandbox.outbox.clear()
    gateway.sandbox.faults.clear()
    return open_page(driver, gateway.base_url + "/")


def articles(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#messages article.message")


def shown(driver: WebDriver) -> list[WebElement]:
    return [a for a in articles(driver) if a.is_displayed()]


def text_of(article: WebElement, selector: str) -> str:
    return str(article.find_element(By.CSS_SELECTOR, selector).get_property("textContent"))


def image_loaded(driver: WebDriver, img: WebElement) -> bool:
    return bool(
        driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
    )


def first_upload_provider(gateway: Gateway) -> str:
    """An upload-capable provider whose sandbox works (all of them, once merged)."""
    for provider in UPLOAD_PROVIDERS:
        try:
            gateway.send_text(provider, OTHER_PHONE, "probe")
        except wamsg.WamsgError:
            continue
        return provider
    pytest.fail(f"none of {UPLOAD_PROVIDERS} sandboxes accepts a message")


def test_messages_sent_after_opening_appear_without_reload(
    gateway: Gateway, driver: WebDriver
) -> None:
    uploader = first_upload_provider(gateway)
    page = open_inbox(gateway, driver)
    assert articles(page) == []
    assert page.find_element(By.ID, "empty").is_displayed()

    text = gateway.send_text("wawp", PHONE, "Olá from the sandbox ✓\nsecond line")
    by_url = gateway.send_image("wawp", PHONE, "https://example.com/p/cat.jpeg", caption="By URL")
    upload = gateway.send_image(uploader, OTHER_PHONE, MEDIA / "tiny.png", caption="Uploaded")

    wait(page).until(lambda d: len(articles(d)) == 3)
    assert page.execute_script("return window.__notReloaded === true")
    newest, middle, oldest = articles(page)  # newest first
    assert [a.get_attribute("data-provider") for a in (newest, middle, oldest)] == [
        uploader,
        "wawp",
        "wawp",
    ]
    assert [a.get_attribute("data-kind") for a in (newest, middle, oldest)] == [
        "image",
        "image",
        "text",
    ]

    assert text_of(oldest, ".text") == "Olá from the sandbox ✓\nsecond line"
    assert text_of(oldest, ".badge") == "wawp"
    assert text_of(oldest, ".chat") == "5511999990000@c.us"
    assert text_of(oldest, ".message-id") == text.message_id

    assert text_of(middle, ".caption") == "By URL"
    assert middle.find_element(By.CSS_SELECTOR, ".placeholder").is_displayed()
    link = middle.find_element(By.CSS_SELECTOR, "a.image-url")
    assert link.text == "https://example.com/p/cat.jpeg"
    assert link.get_attribute("href") == "https://example.com/p/cat.jpeg"
    assert text_of(middle, ".message-id") == by_url.message_id

    assert text_of(newest, ".caption") == "Uploaded"
    assert text_of(newest, ".message-id") == upload.message_id
    thumb = newest.find_element(By.CSS_SELECTOR, "img.thumb")
    wait(page).until(lambda d: image_loaded(d, thumb))
    assert thumb.get_attribute("src").endswith(
        f"/_sandbox/messages/{newest.get_attribute('data-seq')}/image"
    )

    count = page.find_element(By.ID, "count")
    assert count.text == "3 messages"
    assert not page.find_element(By.ID, "empty").is_displayed()


def test_provider_and_chat_filters_hide_the_others(gateway: Gateway, inbox: WebDriver) -> None:
    gateway.send_text("wawp", PHONE, "wawp to the first chat")
    gateway.send_text("wawp", OTHER_PHONE, "wawp to the second chat")
    gateway.send_text("wuts", PHONE, "wuts to the first chat")
    wait(inbox).until(lambda d: len(articles(d)) == 3)

    Select(inbox.find_element(By.ID, "filter-provider")).select_by_value("wawp")
    wait(inbox).until(lambda d: len(shown(d)) == 2)
    assert {a.get_attribute("data-provider") for a in shown(inbox)} == {"wawp"}
    assert inbox.find_element(By.ID, "count").text == "2 of 3 messages"

    # A message arriving while filtered stays hidden when it does not match.
    gateway.send_text("wuts", OTHER_PHONE, "another wuts one")
    wait(inbox).until(lambda d: len(articles(d)) == 4)
    assert len(shown(inbox)) == 2

    chat = Select(inbox.find_element(By.ID, "filter-chat"))
    assert [o.get_attribute("value") for o in chat.options] == [
        "",
        "5511988887777@c.us",
        "5511988887777@s.whatsapp.net",
        "5511999990000@c.us",
        "5511999990000@s.whatsapp.net",
    ]
    chat.select_by_value("5511988887777@c.us")
    wait(inbox).until(lambda d: len(shown(d)) == 1)
    assert text_of(shown(inbox)[0], ".text") == "wawp to the second chat"

    Select(inbox.find_element(By.ID, "filter-provider")).select_by_value("")
    chat.select_by_value("")
    wait(inbox).until(lambda d: len(shown(d)) == 4)


def test_clear_empties_the_list(gateway: Gateway, inbox: WebDriver) -> None:
    gateway.send_text("wawp", PHONE, "one")
    gateway.send_text("wawp", PHONE, "two")
    wait(inbox).until(lambda d: len(articles(d)) == 2)

    inbox.find_element(By.ID, "clear").click()
    wait(inbox).until(lambda d: len(articles(d)) == 0)
    assert len(gateway.sandbox.outbox) == 0
    assert inbox.find_element(By.ID, "count").text == "0 messages"
    assert inbox.find_element(By.ID, "empty").is_displayed()

    # Cleared elsewhere (a new epoch): the page starts over with what is there now.
    gateway.send_text("wawp", PHONE, "three")
    wait(inbox).until(lambda d: len(articles(d)) == 1)
    gateway.sandbox.outbox.clear()
    gateway.send_text("wawp", PHONE, "four")
    wait(inbox).until(lambda d: [text_of(a, ".text") for a in articles(d)] == ["four"])
    assert inbox.execute_script("return window.__notReloaded === true")


def test_message_content_is_shown_as_text_never_markup(gateway: Gateway, inbox: WebDriver) -> None:
    payload = "<img src=x onerror=alert(1)>"
    caption = "<script>alert(2)</script><b>bold?</b>"
    gateway.send_text("wawp", PHONE, payload)
    gateway.send_image("wawp", PHONE, "https://example.com/x.png?<svg/onload=alert(3)>", caption)
    wait(inbox).until(lambda d: len(articles(d)) == 2)

    image, text = articles(inbox)
    assert text_of(text, ".text") == payload
    assert text.find_element(By.CSS_SELECTOR, ".text").text == payload
    assert text_of(image, ".caption") == caption
    assert (
        inbox.find_elements(By.CSS_SELECTOR, "#messages img, #messages script, #messages b") == []
    )
    with pytest.raises(NoAlertPresentException):
        inbox.switch_to.alert.text  # noqa: B018 - reading it is the check
    assert inbox.execute_script("return window.__notReloaded === true")


def test_side_panel_lists_providers_and_faults(gateway: Gateway, inbox: WebDriver) -> None:
    items = inbox.find_elements(By.CSS_SELECTOR, "#providers li[data-provider]")
    assert [i.get_attribute("data-provider") for i in items] == gateway.sandbox.providers
    for item in items:
        name = item.get_attribute("data-provider")
        assert text_of(item, ".base-url") == f"{gateway.base_url}/{name}"

    fault_id = gateway.sandbox.add_fault(
        Fault(kind="rate_limit", provider="wawp", retry_after=7, times=2)
    )
    fault = wait(inbox).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f'#faults li[data-fault-id="{fault_id}"]')
    )
    assert "rate_limit" in fault.text
    assert "wawp" in fault.text
    assert "Retry-After 7s" in fault.text
    assert "fired 0 of 2" in fault.text


@pytest.mark.parametrize("provider", UPLOAD_PROVIDERS)
def test_uploaded_image_shows_a_thumbnail(
    gateway: Gateway, inbox: WebDriver, provider: str
) -> None:
    sent = gateway.send_image(provider, PHONE, MEDIA / "tiny.png", caption=f"via {provider}")
    wait(inbox).until(lambda d: len(articles(d)) == 1)
    (article,) = articles(inbox)
    assert article.get_attribute("data-provider") == provider
    assert text_of(article, ".caption") == f"via {provider}"
    assert text_of(article, ".message-id") == sent.message_id
    thumb = article.find_element(By.CSS_SELECTOR, "img.thumb")
    wait(inbox).until(lambda d: image_loaded(d, thumb))
