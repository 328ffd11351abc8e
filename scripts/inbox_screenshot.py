"""Make docs/sandbox-inbox.png: the sandbox's web inbox with a few messages, at 1280x800.

Starts the sandbox in-process on 127.0.0.1, sends texts and images through
``wamsg.Client`` over real HTTP (one image uploaded, so its thumbnail shows,
one by URL), then photographs the inbox in headless Chromium driven by
selenium. Needs selenium and Debian's ``chromium`` and ``chromium-driver``;
nothing is downloaded and nothing leaves the machine::

    python scripts/inbox_screenshot.py [--output docs/sandbox-inbox.png]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

import wamsg
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.sandbox.sample import encode_png

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 800


# -- a sample picture, drawn in pure Python ------------------------------------


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[float, ...]:
    t = min(max(t, 0.0), 1.0)
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


def sunset(width: int = 160, height: int = 120) -> bytes:
    """A small landscape: a sky gradient, a sun, two ridges of hills and a lake."""
    sky_top, sky_low = (38.0, 48.0, 110.0), (250.0, 160.0, 90.0)
    sun_c, sun_r = (width * 0.62, height * 0.5), height * 0.16
    far = (120.0, 70.0, 110.0)
    near = (45.0, 35.0, 70.0)
    horizon = height * 0.72
    rows: list[list[tuple[int, int, int]]] = []
    for y in range(height):
        row: list[tuple[int, int, int]] = []
        for x in range(width):
            if y < horizon:
                colour = _mix(sky_top, sky_low, (y / horizon) ** 1.3)
                d = math.hypot(x - sun_c[0], y - sun_c[1])
                if d < sun_r:
                    colour = (255.0, 236.0, 170.0)
                else:
                    glow = max(0.0, 1 - (d - sun_r) / (sun_r * 2.2))
                    colour = _mix(colour, (255.0, 210.0, 140.0), glow * 0.55)
                ridge_far = horizon - 18 - 10 * math.sin(x / 17.0) - 6 * math.sin(x / 7.0 + 1)
                ridge_near = horizon - 6 - 9 * math.sin(x / 23.0 + 2) - 3 * math.sin(x / 5.0)
                if y > ridge_near:
                    colour = near
                elif y > ridge_far:
                    colour = _mix(far, near, (y - ridge_far) / 30)
            else:
                # The lake mirrors the sky, darker, with a shimmer under the sun.
                mirror = 2 * horizon - y
                colour = _mix(sky_top, sky_low, (mirror / horizon) ** 1.3)
                colour = _mix(colour, (20.0, 30.0, 70.0), 0.45 + (y - horizon) / height)
                if abs(x - sun_c[0]) < sun_r * (1.1 - (y - horizon) / 40) and y % 3 == 0:
                    colour = _mix(colour, (255.0, 225.0, 160.0), 0.7)
            row.append(tuple(round(c) for c in colour))  # type: ignore[misc]
        rows.append(row)
    return encode_png(width, height, rows)


def chart(width: int = 160, height: int = 120) -> bytes:
    """A small bar chart on a white card."""
    bars = [0.35, 0.55, 0.45, 0.7, 0.62, 0.85]
    colours = [(11, 122, 92), (46, 144, 250), (105, 65, 198)]
    rows: list[list[tuple[int, int, int]]] = []
    left, bottom, gap = 16, height - 16, 4
    bar_w = (width - 2 * left - gap * (len(bars) - 1)) // len(bars)
    for y in range(height):
        row: list[tuple[int, int, int]] = []
        for x in range(width):
            colour = (255, 255, 255)
            if (bottom - y) % 22 == 0 and left <= x < width - left and y <= bottom:
                colour = (228, 231, 236)
            if y == bottom and left <= x < width - left:
                colour = (152, 162, 179)
            i, offset = divmod(x - left, bar_w + gap)
            if 0 <= i < len(bars) and offset < bar_w and bottom - bars[i] * 88 <= y < bottom:
                colour = colours[i % len(colours)]
            row.append(colour)
        rows.append(row)
    return encode_png(width, height, rows)


# -- the browser ------------------------------------------------------------------


def chromium(binary: str, driver_path: str, profile: str) -> WebDriver:
    """A headless Chromium that never reaches for the network or a download."""
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--lang=en-US",
        "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(15)
    # The window size includes no browser UI in headless mode, but make sure.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def photograph(base_url: str, output: Path, binary: str, driver_path: str, expected: int) -> None:
    """Open the inbox, wait until every message and thumbnail is in, and save a PNG."""
    with tempfile.TemporaryDirectory(prefix="wamsg-chromium-") as profile:
        driver = chromium(binary, driver_path, profile)
        try:
            driver.get(base_url + "/")
            wait = WebDriverWait(driver, 15, poll_frequency=0.1)
            wait.until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, "#messages article")) == expected
            )
            wait.until(
                lambda d: d.execute_script(
                    "return [...document.querySelectorAll('img.thumb')]"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                    " && document.querySelectorAll('#faults li[data-fault-id]').length > 0"
                )
            )
            time.sleep(1.5)  # let the arrival highlight fade
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()


# -- the scene ----------------------------------------------------------------------


async def send(
    sandbox: Sandbox, provider: str, kind: str, to: str, *args: object, **kw: object
) -> None:
    """Send one message through ``provider`` on the sandbox."""
    async with wamsg.Client(provider, **sandbox.credentials(provider)) as client:
        if kind == "text":
            await client.send_text(to, *args, **kw)  # type: ignore[arg-type]
        else:
            await client.send_image(to, *args, **kw)  # type: ignore[arg-type]


async def scene(output: Path, binary: str, driver_path: str) -> None:
    """Fill a fresh sandbox with messages, then photograph its inbox."""
    group = "120363025246125486@g.us"
    async with running_sandbox(seed=7) as (sandbox, base_url):
        order = "Olá! Your order #1042 has shipped and arrives Thursday."
        standup = "Reminder: stand-up at 10:00 in room 4.\nBring the release notes."
        menu = "https://example.com/menu/today.jpg"
        messages = [
            ("wuts", "text", "+44 7700 900123", "Your verification code is 482 913."),
            ("gowa", "image", group, chart(), {"caption": "Weekly sign-ups, up 21%"}),
            ("wawp", "image", "+5511999990000", menu, {"caption": "Today's menu"}),
            ("waha", "text", group, standup),
            ("waha", "image", "+5511999990000", sunset(), {"caption": "Sunset from the roof"}),
            ("wawp", "text", "+5511999990000", order),
        ]
        for provider, kind, to, content, *rest in messages:
            extra = rest[0] if rest else {}
            if kind == "image" and isinstance(content, bytes):
                extra = {"filename": "picture.png", **extra}
            await send(sandbox, provider, kind, to, content, **extra)
            await asyncio.sleep(0.35)  # distinct, increasing times
        sandbox.add_fault(Fault(kind="rate_limit", provider="wuts", retry_after=30, times=3))
        sandbox.add_fault(Fault(kind="slow", provider="waha", delay=2.5, times=None))
        await asyncio.to_thread(
            photograph, base_url, output, binary, driver_path, expected=len(messages)
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and make the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "sandbox-inbox.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver"
    )
    args = parser.parse_args(argv)
    asyncio.run(scene(args.output, args.chromium, args.chromedriver))
    print(f"wrote {args.output} ({WIDTH}x{HEIGHT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
