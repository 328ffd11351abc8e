"""The client over every transport and backend, against the real sandbox gateway.

One suite, three runs: AiohttpTransport on asyncio, HttpxTransport on
asyncio, HttpxTransport on trio (aiohttp is asyncio-only; that it says so
clearly under trio is tested at the end). Every scenario runs for each of
the four providers, over real HTTP on 127.0.0.1: the sandbox is served by
aiohttp.web in a thread of its own with its own asyncio loop, so the test's
event loop can be trio. The sandbox's outbox and request log are the proof
of what the gateway got, not what the client says about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import trio

import wamsg
from wamsg import HttpRequest, Outcome, RetryPolicy, Secret, Timeouts
from wamsg.http import HttpResponse
from wamsg.sandbox import Fault, Sandbox, running_sandbox
from wamsg.transports import AiohttpTransport, HttpxTransport, Transport

pytestmark = pytest.mark.anyio

PROVIDERS = ["gowa", "waha", "wawp", "wuts"]
TO = "+5511999990000"
#: Image-like bytes: a PNG signature, then enough to span several 48 KiB chunks.
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(150_000)
IMAGE_URL = "https://cdn.example.com/pics/cat.png"
#: Small backoffs: the retry paths run for real, quickly.
FAST = RetryPolicy(base=0.001, cap=0.01)

COMBOS = [("aiohttp", "asyncio"), ("httpx", "asyncio"), ("httpx", "trio")]
TRANSPORTS: dict[str, Callable[[], Transport]] = {
    "aiohttp": AiohttpTransport,
    "httpx": HttpxTransport,
}


class ThreadedSandbox:
    """The sandbox served by aiohttp.web on 127.0.0.1, in its own thread and asyncio loop."""

    def __init__(self) -> None:
        self.box = Sandbox(seed=3)
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._failed is not None:
            raise RuntimeError(f"the sandbox did not start: {self._failed!r}")

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with running_sandbox(sandbox=self.box) as (_, url):
                self.url = url
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:  # pragma: no cover - reported by __init__
            self._failed = exc
            self._ready.set()

    def reset(self) -> None:
        self.box.faults.clear()
        self.box.outbox.clear()
        self.box.requests.clear()

    def close(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedSandbox]:
    server = ThreadedSandbox()
    yield server
    server.close()


@pytest.fixture
def sandbox(served: ThreadedSandbox) -> ThreadedSandbox:
    served.reset()
    return served


@pytest.fixture(params=COMBOS, ids=[f"{t}-{b}" for t, b in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(combo: tuple[str, str]) -> str:
    return combo[1]


@pytest.fixture
def connect(combo: tuple[str, str], sandbox: ThreadedSandbox) -> Callable[..., wamsg.Client]:
    """``connect(provider, **options)``: a client on this run's transport, at the sandbox."""

    def make(provider: str, *, base_url: str | None = None, **options: Any) -> wamsg.Client:
        options.setdefault("retry", FAST)
        credentials = sandbox.box.credentials(provider, base_url or sandbox.url)
        return wamsg.Client(provider, transport=TRANSPORTS[combo[0]](), **credentials, **options)

    return make


def _requests(sandbox: ThreadedSandbox, provider: str) -> list[tuple[int | None, bool]]:
    """(status, stored) of each request the provider's gateway saw."""
    return [(r.status, r.stored) for r in sandbox.box.requests if r.provider == provider]


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: bound, read, closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _assert_no_secret(sandbox: ThreadedSandbox, provider: str, error: BaseException) -> None:
    """No credential of ``provider`` is in the error's text or repr."""
    credentials = sandbox.box.credentials(provider, sandbox.url)
    secret_keys = {"password", "api_key", "access_token", "token"}
    secrets = [str(v) for k, v in credentials.items() if k in secret_keys]
    assert secrets, "the sandbox gives every provider a credential"
    shown = f"{error} {error!r}"
    assert [s for s in secrets if s in shown] == []


# -- what lands -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_text_lands_in_the_outbox(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        result = await client.send_text(TO, f"hello via {provider}")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.kind == "text"
    assert stored.text == f"hello via {provider}"
    assert stored.message_id == result.message_id
    assert _requests(sandbox, provider) == [(result.attempts[0].status_code, True)]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_image_bytes_arrive_byte_exact(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        if not client.adapter.capabilities.media_bytes:
            # Wawp takes image URLs only: refused before any request.
            with pytest.raises(wamsg.UnsupportedFeature):
                await client.send_image(TO, PNG, caption="look")
            assert _requests(sandbox, provider) == []
            return
        result = await client.send_image(TO, PNG, caption="look")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    # gowa gets multipart, WAHA and WUTS base64 in JSON: the gateway decoded
    # exactly the bytes given, streamed in chunks with Content-Length.
    assert stored.image_bytes == PNG
    assert stored.mimetype == "image/png"
    assert stored.caption == "look"
    assert stored.message_id == result.message_id


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_image_by_url_lands(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider) as client:
        result = await client.send_image(TO, IMAGE_URL, caption="by url")
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.kind == "image"
    assert stored.image_url == IMAGE_URL
    assert stored.image_bytes is None
    assert stored.message_id == result.message_id


# -- what fails, and how ------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_429_is_retried_after_retry_after_and_lands_once(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="rate_limit", provider=provider, retry_after=2))
    # wait=False: the wait is computed (and recorded) but not slept.
    async with connect(provider, retry=RetryPolicy(wait=False)) as client:
        result = await client.send_text(TO, "after a 429")
    first, second = result.attempts
    assert (first.status_code, first.outcome) == (429, Outcome.NOT_SENT)
    assert first.error is not None
    assert first.error.startswith("RateLimited")
    assert second.error is None
    assert second.waited >= 2  # the Retry-After header came through the transport
    seen = _requests(sandbox, provider)
    assert seen[0] == (429, False)
    assert seen[1][1] is True
    assert len(seen) == 2
    (stored,) = sandbox.box.outbox.find(provider=provider)
    assert stored.message_id == result.message_id


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refused_connection_is_not_sent_and_retried(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    async with connect(provider, base_url=f"http://127.0.0.1:{_closed_port()}") as client:
        with pytest.raises(wamsg.ConnectError) as caught:
            await client.send_text(TO, "nobody home")
    err = caught.value
    assert err.outcome is Outcome.NOT_SENT
    assert err.retryable
    assert err.provider == provider
    assert len(err.attempts) == FAST.attempts  # certainly not sent: tried again
    assert "127.0.0.1" in str(err)
    _assert_no_secret(sandbox, provider, err)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_dropped_answer_is_unknown_and_never_resent(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="drop", provider=provider))
    async with connect(provider) as client:
        with pytest.raises(wamsg.Disconnected) as caught:
            await client.send_text(TO, "into the void")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert not caught.value.retryable
    assert len(caught.value.attempts) == 1
    assert _requests(sandbox, provider) == [(None, True)]  # the gateway has it
    assert len(sandbox.box.outbox.find(provider=provider)) == 1
    _assert_no_secret(sandbox, provider, caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_silent_gateway_is_a_read_timeout_unknown(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="slow", provider=provider, delay=1.0))
    async with connect(provider, read_timeout=0.05) as client:
        with pytest.raises(wamsg.SendTimeout) as caught:
            await client.send_text(TO, "slowly")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert len(caught.value.attempts) == 1, "a send that may be out is not repeated"
    # One request, which the gateway stored: the message is out, as "unknown" says.
    assert [stored for _, stored in _requests(sandbox, provider)] == [True]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_per_call_deadline_is_honoured(
    connect: Callable[..., wamsg.Client], sandbox: ThreadedSandbox, provider: str
) -> None:
    sandbox.box.add_fault(Fault(kind="slow", provider=provider, delay=2.0))
    async with connect(provider, timeout=60) as client:
        started = time.monotonic()
        with pytest.raises(wamsg.SendTimeout) as caught:
            await client.send_text(TO, "in a hurry", timeout=0.05)
        elapsed = time.monotonic() - started
        # Generous: far below the gateway's 2 s and the client's own 60 s.
        assert elapsed < 1.5
        # The same client still sends once the gateway answers in time.
        result = await client.send_text(TO, "next one")
    assert caught.value.outcome is Outcome.UNKNOWN
    assert len(caught.value.attempts) == 1
    assert sandbox.box.outbox.find(provider=provider)[-1].message_id == result.message_id


# -- aiohttp under trio: refused, clearly, before any I/O ---------------------------


def _expect_asyncio_only(error: wamsg.ConfigError) -> None:
    text = str(error)
    assert "asyncio only" in text
    assert "this is trio" in text
    assert "HttpxTransport" in text
    assert "pip install 'wamsg[httpx]'" in text


def test_aiohttp_transport_under_trio_says_what_to_use() -> None:
    async def main() -> None:
        with pytest.raises(wamsg.ConfigError) as caught:
            AiohttpTransport()
        _expect_asyncio_only(caught.value)

    trio.run(main)


def test_a_client_without_transport_under_trio_fails_before_any_io(
    sandbox: ThreadedSandbox,
) -> None:
    credentials = sandbox.box.credentials("gowa", sandbox.url)
    built_before = wamsg.Client("gowa", **credentials)  # outside any event loop: fine

    async def main() -> None:
        # Built inside trio: the default transport refuses at once.
        with pytest.raises(wamsg.ConfigError) as caught:
            wamsg.Client("gowa", **credentials)
        _expect_asyncio_only(caught.value)
        # Built before, used under trio: the first send refuses, sending nothing.
        async with built_before as client:
            with pytest.raises(wamsg.ConfigError) as caught:
                await client.send_text(TO, "never sent")
        _expect_asyncio_only(caught.value)
        assert caught.value.outcome is Outcome.NOT_SENT
        assert len(caught.value.attempts) == 1  # not retried: it cannot succeed

    trio.run(main)
    assert list(sandbox.box.requests) == []
    assert len(sandbox.box.outbox) == 0


# -- the same mapping on both transports, against a raw socket ---------------------------

#: A credential in a header or the query, as the error text must never show it.
SECRET = "SUPERSECRET-tok"


class RawServer:
    """A socket server on 127.0.0.1 (its own thread): counts connections, answers canned bytes."""

    def __init__(self, answer: bytes = b"") -> None:
        self.answer = answer or _raw_answer(204)
        self.connections = 0
        self.heads: list[bytes] = []
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server.connections += 1
                data = b""
                while b"\r\n\r\n" not in data:
                    more = self.request.recv(65536)
                    if not more:
                        return
                    data += more
                server.heads.append(data)
                with contextlib.suppress(OSError):
                    self.request.sendall(server.answer)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/send"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _raw_answer(status: int, *headers: str, body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


async def _send(combo: tuple[str, str], request: HttpRequest) -> HttpResponse:
    transport = TRANSPORTS[combo[0]]()
    try:
        return await transport.send(request, timeouts=Timeouts(connect=5, read=5, total=10))
    finally:
        await transport.aclose()


def _assert_refused_before_io(error: wamsg.WamsgError, raw: RawServer) -> None:
    assert type(error) is wamsg.ConfigError
    assert error.outcome is Outcome.NOT_SENT
    assert not error.retryable
    assert raw.connections == 0, "refused before any I/O"
    shown = f"{error} {error!r}"
    assert SECRET not in shown
    assert str(raw.port) not in shown  # no URL
    assert "127.0.0.1" not in shown
    assert error.__cause__ is None


BAD_HEADERS = {
    "non-ascii": ("X-Api-Key", f"{SECRET}-café"),
    "cr-lf": ("X-Api-Key", f"{SECRET}\r\nX-Injected: 1"),
    "lf": ("X-Api-Key", f"{SECRET}\n"),
    "nul": ("X-Api-Key", f"{SECRET}\x00"),
    "name-cr-lf": (f"X-A\r\nX-{SECRET}", "1"),
    "name-empty": ("", SECRET),
    "name-space": ("X Api", SECRET),
}


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
@pytest.mark.parametrize("secret", [False, True], ids=["plain", "secret"])
async def test_a_header_that_cannot_be_sent_is_a_config_error_before_any_io(
    combo: tuple[str, str], raw: RawServer, name: str, value: str, secret: bool
) -> None:
    header = (name, Secret(value) if secret else value)
    request = HttpRequest(method="POST", url=raw.url, headers=(header,), body=b"{}")
    with pytest.raises(wamsg.WamsgError) as caught:
        await _send(combo, request)
    _assert_refused_before_io(caught.value, raw)
    if name == "X-Api-Key":
        assert "X-Api-Key header" in str(caught.value)  # which one, never its value


BAD_URLS = {
    "ftp": "ftp://127.0.0.1:{port}/v1/send?token={secret}",
    "ws": "ws://127.0.0.1:{port}/v1/send?token={secret}",
    "no-scheme": "127.0.0.1:{port}/v1/send?token={secret}",
    "credential-as-scheme": "{secret}:x@127.0.0.1:{port}/v1/send",
    "no-host": "http:///v1/send?token={secret}",
    "port-out-of-range": "http://127.0.0.1:99999/v1/send?token={secret}&p={port}",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
async def test_a_url_that_is_not_http_is_a_config_error_before_any_io(
    combo: tuple[str, str], raw: RawServer, url: str
) -> None:
    request = HttpRequest(method="POST", url=url.format(port=raw.port, secret=SECRET))
    with pytest.raises(wamsg.WamsgError) as caught:
        await _send(combo, request)
    _assert_refused_before_io(caught.value, raw)
    assert "invalid URL" in str(caught.value)


async def test_a_method_that_is_not_a_token_is_a_config_error(
    combo: tuple[str, str], raw: RawServer
) -> None:
    with pytest.raises(wamsg.WamsgError) as caught:
        await _send(combo, HttpRequest(method="PO ST", url=raw.url))
    _assert_refused_before_io(caught.value, raw)


async def test_repeated_answer_headers_read_the_same_on_both(
    combo: tuple[str, str], raw: RawServer
) -> None:
    raw.answer = _raw_answer(
        429, "Retry-After: 5", "Vary: Accept", "Retry-After: 7", "Vary: Origin", "X-One: 1"
    )
    response = await _send(combo, HttpRequest(method="POST", url=raw.url))
    assert response.status == 429
    # Single-valued: the first. Lists: joined, as RFC 9110 §5.3 says.
    assert response.header("Retry-After") == "5"
    assert response.header("vary") == "Accept, Origin"
    assert response.header("x-one") == "1"


async def test_a_repeated_retry_after_still_reaches_the_client(
    combo: tuple[str, str], raw: RawServer
) -> None:
    raw.answer = _raw_answer(429, "Retry-After: 5", "Retry-After: 5", body=b"{}")
    client = wamsg.Client(
        "waha",
        base_url=f"http://127.0.0.1:{raw.port}",
        api_key=SECRET,
        transport=TRANSPORTS[combo[0]](),
        retry=RetryPolicy(attempts=1),
    )
    async with client:
        with pytest.raises(wamsg.RateLimited) as caught:
            await client.send_text(TO, "Hello")
    assert caught.value.retry_after == 5


class _BrokenRequest(aiohttp.ClientRequest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"cannot build {SECRET}")


class _BrokenClient(httpx.AsyncClient):
    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        raise TypeError(f"cannot build {SECRET}")


async def test_an_unexpected_failure_while_building_is_not_sent(
    combo: tuple[str, str], raw: RawServer
) -> None:
    request = HttpRequest(method="POST", url=raw.url, query=(("token", Secret(SECRET)),))
    transport: Transport
    if combo[0] == "aiohttp":
        pool: Any = aiohttp.ClientSession(request_class=_BrokenRequest)
        transport = AiohttpTransport(pool)
    else:
        pool = _BrokenClient()
        transport = HttpxTransport(pool)
    try:
        with pytest.raises(wamsg.WamsgError) as caught:
            await transport.send(request, timeouts=Timeouts())
    finally:
        await transport.aclose()
        await (pool.close() if combo[0] == "aiohttp" else pool.aclose())
    error = caught.value
    assert type(error) is wamsg.TransportError
    assert error.outcome is Outcome.NOT_SENT
    assert not error.retryable
    assert "could not build the request (TypeError)" in str(error)
    assert SECRET not in f"{error} {error!r}"
    assert error.__cause__ is None
    assert raw.connections == 0


def test_a_request_repr_masks_the_number_in_the_path_too() -> None:
    request = HttpRequest(
        method="POST",
        url="https://api.example/v1/chats/5511999990000/messages",
        query=(("to", "+55 11 99999-0000"), ("token", Secret(SECRET))),
    )
    shown = repr(request)
    assert "5511999990000" not in shown
    assert "99999-0000" not in shown
    assert SECRET not in shown
    assert shown == (
        "HttpRequest(POST https://api.example/v1/chats/55*********00/messages"
        "?to=+55*********00&token=***, body=0 bytes)"
    )


# -- TLS: both trust the system store ---------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for 127.0.0.1 it signed, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command")
    where = tmp_path_factory.mktemp("tls")
    (where / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    for command in (
        f"req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=wamsg-test-CA"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
        f"req {ec} -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1",
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem"
        " -days 2 -extfile leaf.ext",
    ):
        subprocess.run([openssl, *command.split()], cwd=where, check=True, capture_output=True)
    return where


class TlsServer(RawServer):
    """:class:`RawServer` behind TLS, with the certificate in ``files``."""

    def __init__(self, files: Path) -> None:
        super().__init__()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files / "leaf.pem", files / "leaf.key")
        plain = self.server.socket
        self.server.socket = context.wrap_socket(plain, server_side=True)
        self.url = f"https://127.0.0.1:{self.port}/v1/send"


@pytest.fixture
def tls(tls_files: Path) -> Iterator[TlsServer]:
    server = TlsServer(tls_files)
    yield server
    server.close()


async def test_an_unknown_ca_fails_the_same_way_and_the_documented_ca_works(
    combo: tuple[str, str], tls: TlsServer, tls_files: Path
) -> None:
    request = HttpRequest(method="POST", url=tls.url)
    # The transport's own pool: the system store, which does not hold the test CA.
    with pytest.raises(wamsg.WamsgError) as caught:
        await _send(combo, request)
    assert type(caught.value) is wamsg.ConnectError
    assert caught.value.outcome is Outcome.NOT_SENT
    assert "SSLCertVerificationError" in str(caught.value) or "certificate" in str(caught.value)
    # Your own pool with the CA in an ssl.SSLContext (docs/transports.md).
    trusted = ssl.create_default_context(cafile=str(tls_files / "ca.pem"))
    transport: Transport
    if combo[0] == "aiohttp":
        pool: Any = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted))
        transport = AiohttpTransport(pool)
    else:
        pool = httpx.AsyncClient(verify=trusted)
        transport = HttpxTransport(pool)
    try:
        response = await transport.send(request, timeouts=Timeouts(connect=5, read=5))
    finally:
        await transport.aclose()
        await (pool.close() if combo[0] == "aiohttp" else pool.aclose())
    assert response.status == 204


_SYSTEM_STORE = """
import asyncio, sys
from wamsg import HttpRequest, Timeouts
from wamsg.transports import AiohttpTransport, HttpxTransport

async def main():
    for kind in (AiohttpTransport, HttpxTransport):
        transport = kind()
        try:
            response = await transport.send(
                HttpRequest(method="POST", url=sys.argv[1]), timeouts=Timeouts(connect=5, read=5)
            )
            print(kind.__name__, response.status)
        except Exception as exc:
            print(kind.__name__, type(exc).__name__)
        finally:
            await transport.aclose()

asyncio.run(main())
"""


def test_both_created_pools_trust_the_system_store(tls: TlsServer, tls_files: Path) -> None:
    # OpenSSL's default store is SSL_CERT_FILE: the "system" store of this
    # process holds the test CA. httpx's own default (certifi) would not.
    env = {**os.environ, "SSL_CERT_FILE": str(tls_files / "ca.pem")}
    env.pop("SSL_CERT_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", _SYSTEM_STORE, tls.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split("\n")[:2] == ["AiohttpTransport 204", "HttpxTransport 204"]
