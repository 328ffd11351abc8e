"""HttpxTransport with respx: request building, answers, and every failure's mapping.

respx replaces httpx's connection pool, so each test sees exactly what httpx
was asked to send (method, URL, query with the secrets revealed, headers,
the streamed body as the gateway would read it) and can make httpx fail in
any of its ways. Real sockets, the sandbox gateway and trio over TCP are in
tests/test_transports_suite.py. Every async test runs on asyncio and trio.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import json
import os
import socketserver
import subprocess
import sys
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

import wamsg
from wamsg import HttpRequest, Secret, Timeouts
from wamsg.http import ComposedBody, MediaChunks, StreamBody
from wamsg.models import Media
from wamsg.transports import HttpxTransport

pytestmark = pytest.mark.anyio

TOKEN = "tok/+en& =SUPERSECRET"  # every character a query must escape
INSTANCE = "123456789"
PHONE = "+55 11 99999-0000"
GATEWAY = "http://gw.test"
URL = f"{GATEWAY}/v2/send/text"
ANSWER = {"id": {"_serialized": "true_5511999990000@c.us_3EB0AA"}, "ack": 0}
#: Image-like bytes: a PNG signature, then enough to span several 48 KiB chunks.
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(150_000)
FAST = wamsg.RetryPolicy(base=0.001, cap=0.01)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gateway() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=GATEWAY, assert_all_called=False) as router:
        yield router


def wawp_client(**kwargs: Any) -> wamsg.Client:
    kwargs.setdefault("transport", HttpxTransport())
    return wamsg.Client(
        "wawp", instance_id=INSTANCE, access_token=TOKEN, base_url=GATEWAY, **kwargs
    )


def secret_request(body: Any = b"{}", **kwargs: Any) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=URL,
        query=(("instance_id", INSTANCE), ("access_token", Secret(TOKEN))),
        headers=(("Authorization", Secret(f"Bearer {TOKEN}")), ("X-Plain", "1")),
        body=body,
        **kwargs,
    )


class Seen:
    """A respx side effect that reads the whole (streamed) body and keeps the request."""

    def __init__(self, response: httpx.Response | None = None) -> None:
        self.response = response or httpx.Response(200, json=ANSWER)
        self.requests: list[tuple[httpx.Request, bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request, await request.aread()))
        return self.response


# -- what goes out ------------------------------------------------------------------


async def test_a_text_send_goes_out_as_the_adapter_built_it(gateway: respx.MockRouter) -> None:
    seen = Seen()
    gateway.post("/v2/send/text").mock(side_effect=seen)
    async with wawp_client() as client:
        result = await client.send_text(PHONE, "Hello")
    ((request, body),) = seen.requests
    assert request.method == "POST"
    assert request.url.path == "/v2/send/text"
    # The secret arrives revealed, and decodes to itself: the query was escaped.
    assert list(request.url.params.multi_items()) == [
        ("instance_id", INSTANCE),
        ("access_token", TOKEN),
    ]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("wamsg/")
    assert "httpx/" in request.headers["user-agent"]
    assert json.loads(body) == {"chatId": "5511999990000@c.us", "message": "Hello"}
    assert request.headers["content-length"] == str(len(body))
    assert result.message_id == ANSWER["id"]["_serialized"]  # type: ignore[index]


async def test_secret_headers_are_revealed_only_on_the_wire(gateway: respx.MockRouter) -> None:
    seen = Seen()
    gateway.post("/v2/send/text").mock(side_effect=seen)
    transport = HttpxTransport()
    request = secret_request()
    await transport.send(request, timeouts=Timeouts())
    await transport.aclose()
    ((sent, _),) = seen.requests
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["x-plain"] == "1"
    assert TOKEN not in f"{request!r} {transport!r}"


async def _chunks() -> AsyncIterator[bytes]:
    for offset in range(0, len(PNG), 40_000):
        yield PNG[offset : offset + 40_000]


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("stream with length", StreamBody(open=_chunks, length=len(PNG)), PNG),
        ("stream of unknown length", StreamBody(open=_chunks), PNG),
        (
            "multipart-like raw part",
            ComposedBody(parts=(b"--b\r\n", MediaChunks(media=Media(data=PNG)), b"\r\n--b--")),
            b"--b\r\n" + PNG + b"\r\n--b--",
        ),
        (
            "base64 inside JSON",
            ComposedBody(
                parts=(b'{"file":"', MediaChunks(media=Media(data=PNG), base64=True), b'"}')
            ),
            b'{"file":"' + base64.b64encode(PNG) + b'"}',
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_streamed_bodies_arrive_byte_exact(
    gateway: respx.MockRouter, name: str, body: Any, expected: bytes
) -> None:
    seen = Seen()
    gateway.post("/v2/send/text").mock(side_effect=seen)
    transport = HttpxTransport()
    await transport.send(secret_request(body), timeouts=Timeouts())
    await transport.send(secret_request(body), timeouts=Timeouts())  # bodies replay
    await transport.aclose()
    for request, sent in seen.requests:
        assert sent == expected
        if body.length is None:
            assert request.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in request.headers
        else:
            # Known up front: Content-Length, never chunked (gateways refuse it).
            assert request.headers["content-length"] == str(len(expected))
            assert "transfer-encoding" not in request.headers
    assert len(seen.requests) == 2


async def test_an_upload_from_a_file_streams_the_file(
    gateway: respx.MockRouter, tmp_path: Path
) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    seen = Seen(httpx.Response(200, json={"code": "SUCCESS", "results": {"message_id": "3EB0"}}))
    gateway.post("/send/image").mock(side_effect=seen)
    transport = HttpxTransport()
    async with wamsg.Client("gowa", base_url=GATEWAY, device_id="d", transport=transport) as client:
        await client.send_image(PHONE, str(path), caption="look")
    ((request, body),) = seen.requests
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["content-length"] == str(len(body))
    assert body.count(PNG) == 1


async def test_a_body_that_fails_to_read_is_not_sent(gateway: respx.MockRouter) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise OSError(5, "Input/output error")

    gateway.post("/v2/send/text").mock(side_effect=Seen())
    transport = HttpxTransport()
    with pytest.raises(wamsg.TransportError) as caught:
        await transport.send(secret_request(StreamBody(open=broken)), timeouts=Timeouts())
    await transport.aclose()
    assert caught.value.outcome is wamsg.Outcome.NOT_SENT
    assert "reading the image failed" in str(caught.value)
    assert "Input/output error" in str(caught.value)


# -- what comes back ----------------------------------------------------------------


async def test_status_headers_and_body_come_back(gateway: respx.MockRouter) -> None:
    gateway.post("/v2/send/text").respond(
        201, content=b"hello", headers={"X-Request-Id": "r1", "Retry-After": "3"}
    )
    transport = HttpxTransport()
    response = await transport.send(secret_request(), timeouts=Timeouts())
    await transport.aclose()
    assert (response.status, response.body, response.truncated) == (201, b"hello", False)
    assert response.header("x-request-id") == "r1"
    assert response.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("status", "size", "cap", "truncated"),
    [
        (500, 100_000, 1000, True),
        (500, 1000, 1000, False),  # exactly the cap is the whole body
        (500, 1001, 1000, True),  # one byte more is not
        (200, 5000, 4096, True),
        (200, 4096, 4096, False),
    ],
)
async def test_bodies_are_read_up_to_their_cap(
    gateway: respx.MockRouter, status: int, size: int, cap: int, truncated: bool
) -> None:
    gateway.post("/v2/send/text").respond(status, content=b"x" * size)
    transport = HttpxTransport(max_body=4096, max_error_body=1000)
    response = await transport.send(secret_request(), timeouts=Timeouts())
    await transport.aclose()
    assert response.truncated is truncated
    assert response.body == b"x" * min(size, cap)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # RFC 9110: zlib-wrapped
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as some servers send
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
async def test_compressed_answers_are_decoded(
    gateway: respx.MockRouter, coding: str, compress: Any
) -> None:
    document = json.dumps({"ok": True, "pad": "y" * 200_000}).encode()
    gateway.post("/v2/send/text").respond(
        200, content=compress(document), headers={"Content-Encoding": coding}
    )
    transport = HttpxTransport()
    response = await transport.send(secret_request(), timeouts=Timeouts())
    await transport.aclose()
    assert response.body == document
    assert not response.truncated


class CannedServer:
    """A real HTTP/1.1 server on 127.0.0.1 (its own thread) that answers canned bytes.

    respx reads and decodes a mocked answer whole before httpx sees it, so
    what the transport does with a compressed body on the wire is tested here.
    """

    def __init__(self) -> None:
        self.answer = b"HTTP/1.1 204 No Content\r\n\r\n"
        canned = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = self.request.recv(65536)
                    if not more:
                        return
                    data += more
                with contextlib.suppress(OSError):  # the client may hang up early
                    self.request.sendall(canned.answer)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/x"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


def _canned_answer(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


@functools.cache
def _bomb() -> bytes:
    """32 MiB of zeros, gzipped to 32 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return b"".join([packer.compress(bytes(1 << 20)) for _ in range(32)] + [packer.flush()])


async def test_a_gzip_bomb_is_inflated_only_up_to_the_cap(canned: CannedServer) -> None:
    canned.answer = _canned_answer(500, _bomb(), "Content-Encoding: gzip")
    transport = HttpxTransport()
    request = HttpRequest(method="POST", url=canned.url)
    tracemalloc.start()
    try:
        response = await transport.send(request, timeouts=Timeouts(total=30))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await transport.aclose()
    assert response.truncated
    assert len(response.body) == 64 * 1024
    # 32 MiB inflated whole (httpx's own decoder) would show here; 64 KiB pieces do not.
    assert peak < 8 * 1024 * 1024


async def test_a_corrupt_compressed_answer_is_unknown(canned: CannedServer) -> None:
    canned.answer = _canned_answer(200, b"\x1f\x8b not gzip at all", "Content-Encoding: gzip")
    transport = HttpxTransport()
    with pytest.raises(wamsg.Disconnected, match="could not be read") as caught:
        await transport.send(HttpRequest(method="POST", url=canned.url), timeouts=Timeouts())
    await transport.aclose()
    assert caught.value.outcome is wamsg.Outcome.UNKNOWN


async def test_a_redirect_is_not_followed(gateway: respx.MockRouter) -> None:
    route = gateway.post("/v2/send/text").respond(302, headers={"Location": "/elsewhere"})
    elsewhere = gateway.route(path="/elsewhere").respond(200, json=ANSWER)
    async with (
        httpx.AsyncClient(follow_redirects=True) as own,
        wawp_client(transport=HttpxTransport(own)) as client,
    ):
        with pytest.raises(wamsg.ProviderError) as caught:
            await client.send_text(PHONE, "Hello")
    assert caught.value.status_code == 302
    assert (route.call_count, elsewhere.call_count) == (1, 0)


# -- failures: every httpx exception, mapped ----------------------------------------


def _leaky(kind: type[BaseException]) -> BaseException:
    """``kind`` with the text httpx-like libraries write: the URL, token included."""
    text = f"failed: POST {URL}?instance_id={INSTANCE}&access_token={TOKEN}"
    if kind is httpx.StreamConsumed:
        return kind()  # its text is fixed
    return kind(text)


MAPPING = [
    (httpx.ConnectError, wamsg.ConnectError, wamsg.Outcome.NOT_SENT),
    (httpx.ConnectTimeout, wamsg.ConnectError, wamsg.Outcome.NOT_SENT),
    (httpx.PoolTimeout, wamsg.ConnectError, wamsg.Outcome.NOT_SENT),
    (httpx.ProxyError, wamsg.ConnectError, wamsg.Outcome.NOT_SENT),
    (httpx.LocalProtocolError, wamsg.TransportError, wamsg.Outcome.NOT_SENT),
    (httpx.UnsupportedProtocol, wamsg.ConfigError, wamsg.Outcome.NOT_SENT),
    (httpx.ReadTimeout, wamsg.SendTimeout, wamsg.Outcome.UNKNOWN),
    (httpx.WriteTimeout, wamsg.SendTimeout, wamsg.Outcome.UNKNOWN),
    (httpx.ReadError, wamsg.Disconnected, wamsg.Outcome.UNKNOWN),
    (httpx.WriteError, wamsg.Disconnected, wamsg.Outcome.UNKNOWN),
    (httpx.CloseError, wamsg.Disconnected, wamsg.Outcome.UNKNOWN),
    (httpx.RemoteProtocolError, wamsg.Disconnected, wamsg.Outcome.UNKNOWN),
    (httpx.DecodingError, wamsg.Disconnected, wamsg.Outcome.UNKNOWN),
    (httpx.StreamConsumed, wamsg.TransportError, wamsg.Outcome.UNKNOWN),
    (RuntimeError, wamsg.ConfigError, wamsg.Outcome.NOT_SENT),
    (ValueError, wamsg.TransportError, wamsg.Outcome.UNKNOWN),
]


@pytest.mark.parametrize(
    ("raised", "error", "outcome"), MAPPING, ids=[kind.__name__ for kind, _, _ in MAPPING]
)
async def test_each_httpx_failure_maps_to_its_error_and_outcome(
    gateway: respx.MockRouter,
    raised: type[BaseException],
    error: type[wamsg.WamsgError],
    outcome: wamsg.Outcome,
) -> None:
    route = gateway.post("/v2/send/text").mock(side_effect=_leaky(raised))
    async with wawp_client(retry=FAST) as client:
        with pytest.raises(error) as caught:
            await client.send_text(PHONE, "Hello")
    err = caught.value
    assert type(err) is error
    assert err.outcome is outcome
    if isinstance(err, wamsg.TransportError):
        assert err.provider == "wawp"
    assert raised.__name__ in str(err)  # what failed, by name
    # Nothing of the library's text: no token, no query, no cause to print.
    assert TOKEN not in f"{err} {err!r}"
    assert "access_token" not in str(err)
    assert err.__cause__ is None
    assert err.__suppress_context__
    if outcome is wamsg.Outcome.NOT_SENT and err.retryable:
        assert route.call_count == FAST.attempts  # certainly not sent: tried again
    else:
        assert route.call_count == 1, "a send that may have gone out is never repeated"


async def test_a_connect_error_names_the_host_and_port_only(gateway: respx.MockRouter) -> None:
    gateway.post("/v2/send/text").mock(side_effect=_leaky(httpx.ConnectError))
    transport = HttpxTransport()
    with pytest.raises(wamsg.ConnectError) as caught:
        await transport.send(secret_request(), timeouts=Timeouts())
    await transport.aclose()
    assert str(caught.value) == "could not connect to gw.test:80: ConnectError"


async def test_the_total_deadline_is_enforced_by_the_transport(
    gateway: respx.MockRouter,
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        return httpx.Response(200)

    gateway.post("/v2/send/text").mock(side_effect=hang)
    transport = HttpxTransport()
    assert transport.enforces_timeouts
    with anyio.fail_after(10):  # generous: the 0.05 s deadline must end it, not this
        with pytest.raises(wamsg.SendTimeout) as caught:
            await transport.send(secret_request(), timeouts=Timeouts(total=0.05))
    await transport.aclose()
    assert caught.value.outcome is wamsg.Outcome.UNKNOWN


async def test_a_raising_event_hook_is_reported_not_hidden(gateway: respx.MockRouter) -> None:
    async def raise_for_status(response: httpx.Response) -> None:
        response.raise_for_status()

    gateway.post("/v2/send/text").respond(404)
    own = httpx.AsyncClient(event_hooks={"response": [raise_for_status]})
    transport = HttpxTransport(own)
    with pytest.raises(wamsg.TransportError, match=r"event hook.*HTTP 404") as caught:
        await transport.send(secret_request(), timeouts=Timeouts())
    await own.aclose()
    assert caught.value.outcome is wamsg.Outcome.UNKNOWN
    assert TOKEN not in str(caught.value)


# -- ownership and life cycle -------------------------------------------------------


async def test_a_closed_transport_refuses_to_send(gateway: respx.MockRouter) -> None:
    route = gateway.post("/v2/send/text").respond(200, json=ANSWER)
    transport = HttpxTransport()
    await transport.send(secret_request(), timeouts=Timeouts())
    inner = transport._client
    assert inner is not None
    await transport.aclose()
    assert inner.is_closed  # ours: closed with the transport
    assert repr(transport) == "HttpxTransport(closed)"
    with pytest.raises(wamsg.ConfigError, match="closed"):
        await transport.send(secret_request(), timeouts=Timeouts())
    assert route.call_count == 1


async def test_a_users_client_stays_open_and_keeps_its_settings(
    gateway: respx.MockRouter,
) -> None:
    seen = Seen()
    gateway.post("/v2/send/text").mock(side_effect=seen)
    async with httpx.AsyncClient(headers={"User-Agent": "my-service/2"}) as own:
        transport = HttpxTransport(own)
        assert repr(transport) == "HttpxTransport(shared client)"
        async with wawp_client(transport=transport) as client:
            await client.send_text(PHONE, "Hello")
        assert not own.is_closed
        # Still usable by its owner after the wamsg client closed.
        assert (await own.post(f"{GATEWAY}/v2/send/text")).status_code == 200
    assert seen.requests[0][0].headers["user-agent"] == "my-service/2"


async def test_a_users_client_closed_by_its_owner_is_a_config_error() -> None:
    own = httpx.AsyncClient()
    await own.aclose()
    transport = HttpxTransport(own)
    with pytest.raises(wamsg.ConfigError, match="closed by its owner"):
        await transport.send(secret_request(), timeouts=Timeouts())


def test_the_client_must_be_an_async_client() -> None:
    with pytest.raises(wamsg.ConfigError, match=r"httpx\.AsyncClient"):
        HttpxTransport(httpx.Client())  # type: ignore[arg-type]


def test_one_transport_serves_one_event_loop() -> None:
    transport = HttpxTransport()

    async def send() -> None:
        with respx.mock(base_url=GATEWAY) as router:
            router.post("/v2/send/text").respond(200)
            await transport.send(secret_request(), timeouts=Timeouts())

    anyio.run(send)
    with pytest.raises(wamsg.ConfigError, match="another event loop"):
        anyio.run(send, backend="trio")
    anyio.run(transport.aclose)


# -- the optional extra -------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_wamsg_never_imports_httpx() -> None:
    done = _python(
        "import sys, wamsg, wamsg.transports\n"
        "wamsg.transports.AiohttpTransport\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'\n"
        "from wamsg.transports import HttpxTransport\n"
        "assert 'httpx' in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


def test_without_httpx_the_error_says_what_to_install() -> None:
    done = _python(
        "import sys\n"
        "sys.modules['httpx'] = None  # as if it were not installed\n"
        "import wamsg, wamsg.transports\n"
        "def attribute():\n"
        "    return wamsg.transports.HttpxTransport\n"
        "def from_import():\n"
        "    from wamsg.transports import HttpxTransport\n"
        "def module():\n"
        "    import wamsg.transports.httpx\n"
        "for way in (attribute, from_import, module):\n"
        "    try:\n"
        "        way()\n"
        "    except ImportError as exc:\n"
        "        print(way.__name__, exc)\n"
        "    else:\n"
        "        raise SystemExit(f'{way.__name__}: no ImportError')\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["attribute", "from_import", "module"]
    for line in lines:
        assert line.endswith(
            "HttpxTransport needs httpx, which is not installed: pip install 'wamsg[httpx]'"
        )
