"""`wamsg webhook listen`, run as a real subprocess receiving real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

SECRET = "cli-SeCrEt-77"
PHONE = "628123456789"

TEXT = json.dumps(
    {
        "device_id": "628987654321@s.whatsapp.net",
        "event": "message",
        "payload": {
            "body": "Hello\u001b[31m from the CLI",
            "chat_id": f"{PHONE}@s.whatsapp.net",
            "from": f"{PHONE}@s.whatsapp.net",
            "id": "3EB0C127D7BACC83D6A1",
            "is_from_me": False,
            "timestamp": "2023-10-15T10:30:00Z",
        },
    },
    separators=(",", ":"),
    sort_keys=True,
).encode()

RECEIPT = json.dumps(
    {
        "device_id": "628987654321@s.whatsapp.net",
        "event": "message.ack",
        "payload": {
            "chat_id": f"{PHONE}@s.whatsapp.net",
            "from": f"{PHONE}@s.whatsapp.net",
            "ids": ["3EB00106E8BE0F407E88EC"],
            "receipt_type": "read",
            "receipt_type_description": "the user opened the chat and saw the message.",
        },
        "timestamp": "2025-07-18T22:44:44Z",
    },
    separators=(",", ":"),
    sort_keys=True,
).encode()


def post(url: str, body: bytes, secret: str = SECRET) -> int:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def listen(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "WAMSG_WEBHOOK_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "wamsg", "webhook", "listen", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    match = re.search(r"POST (http://127\.0\.0\.1:\d+\S*)", banner)
    if match is None:
        process.kill()
        pytest.fail(f"no URL in {banner!r}: {process.communicate()}")
    return process, match.group(1)


@pytest.mark.parametrize("as_json", [False, True])
def test_listen_prints_normalized_masked_events(as_json: bool) -> None:
    process, url = listen("--provider", "gowa", "--count", "2", *(["--json"] if as_json else []))
    try:
        assert post(url, TEXT, "wrong-secret") == 401
        assert post(url, TEXT) == 200
        assert post(url, TEXT) == 200  # a duplicate: not printed
        assert post(url, RECEIPT) == 200
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert PHONE not in out + err
    assert SECRET not in out + err
    assert "\x1b" not in out
    if as_json:
        first, second = (json.loads(line) for line in lines)
        assert first["kind"] == "message"
        assert first["message"]["text"].startswith("Hello")
        assert second["status"]["status"] == "read"
        assert second["status"]["message_ids"] == ["3EB00106E8BE0F407E88EC"]
    else:
        assert "gowa message message" in lines[0]
        assert "text='Hello" in lines[0]
        assert "status=read" in lines[1]
        assert "3EB00106E8BE0F407E88EC" in lines[1]
    assert "1 duplicates, 1 refused" in err


def test_listen_needs_a_secret_or_insecure() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAMSG_WEBHOOK_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "wamsg", "webhook", "listen", "--provider", "gowa"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--secret" in done.stderr


def test_listen_for_wawp_takes_the_secret_in_the_url() -> None:
    process, url = listen("--provider", "wawp", "--count", "1")
    try:
        assert url.endswith("/<secret>")
        base = url.removesuffix("<secret>")
        body = json.dumps(
            {
                "id": "evt_01aaaaaaaaaaaaaaaaaaaaaaaa",
                "timestamp": 1634567890123,
                "session": "default",
                "event": "message.ack",
                "payload": {"id": f"true_{PHONE}@c.us_AAAA", "ack": 3, "ackName": "READ"},
            }
        ).encode()
        assert post(base + "guess", body) == 401
        assert post(base + SECRET, body) == 200
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "status=read" in out
    assert PHONE not in out


@pytest.mark.parametrize("provider", ["gowa", "waha", "wawp"])
def test_the_sandbox_fires_at_listen(provider: str) -> None:
    """`wamsg sandbox --webhook` -> `wamsg webhook listen`, all three as processes."""
    from test_cli import run, start_sandbox, stop

    listener, url = listen("--provider", provider, "--count", "2" if provider == "gowa" else "3")
    # Wawp does not sign: the secret is the URL's last segment instead.
    target = url.replace("<secret>", SECRET)
    option = target if provider == "wawp" else f"{target},secret={SECRET}"
    try:
        running = start_sandbox("--port", "0", "--webhook", f"{option},provider={provider}")
        try:
            shown = target.rsplit("/", 1)[0] + "/***"
            assert f"webhooks: {provider} -> {shown}" in running.banner
            assert SECRET not in running.banner
            sent = run("send-text", "+5511988887777", "hi", env=running.env(provider))
            assert sent.returncode == 0, sent.stderr
            out, err = listener.communicate(timeout=30)
        finally:
            stop(running)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    statuses = re.findall(r"status=(\w+)", out)
    # gowa forwards delivered and read only; WAHA's ack 1 (SERVER) is "sent".
    expected = ["delivered", "read"] if provider == "gowa" else ["sent", "delivered", "read"]
    assert statuses == expected, out
    assert "0 refused" in err
