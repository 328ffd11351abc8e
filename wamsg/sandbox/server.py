"""The sandbox: every pure gateway, one outbox, faults, and the aiohttp.web shell.

Each provider lives under its own path prefix (``/wawp/...``, ``/waha/...``,
``/gowa/...``, ``/wuts/...``), so one server speaks every gateway's protocol
without their paths colliding. :meth:`Sandbox.dispatch` is pure: it picks
the fault (if any), runs the provider's handler and says what to answer; the
HTTP shell here and the socket-free transport in :mod:`wamsg.testing` only
carry that out. The server binds 127.0.0.1 unless told otherwise.

HTTP API besides the gateways (JSON):

* ``GET /`` the web inbox; ``GET /_sandbox/providers`` base URLs and credentials
* ``GET /_sandbox/messages?provider=&chat=&after=SEQ``, ``DELETE /_sandbox/messages``
* ``GET /_sandbox/messages/{seq}/image`` the uploaded image bytes
* ``GET|POST|DELETE /_sandbox/faults``, ``DELETE /_sandbox/faults/{id}``
* ``GET /_sandbox/requests`` the last requests the gateways saw, with their fate
* ``GET|POST|DELETE /_sandbox/webhooks``, ``DELETE /_sandbox/webhooks/{id}`` the
  webhook targets; ``GET /_sandbox/webhooks/deliveries?after=SEQ`` every attempt
* ``POST /_sandbox/inbound`` a message "from a phone": fires a ``message`` webhook

Webhooks (wamsg/sandbox/webhooks.py, docs/sandbox.md "Webhooks"): for each
message a gateway stores, the shell fires that gateway's receipts after the
answer has been written (or, under an ``early_receipt`` fault, before it);
incoming media is served where each gateway serves it
(``/waha/api/files/…``, ``/wawp/api/files/…``, ``/gowa/statics/media/…``,
``/wuts/messages/{id}/media``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import re
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web

from .._mediatype import sniff
from ..http import HttpRequest, HttpResponse
from .base import GatewaySandbox, reason_phrase, recording_stores
from .faults import Fault, FaultSet
from .gowa import GowaSandbox
from .outbox import Outbox, StoredMessage
from .waha import WahaSandbox
from .wawp import WawpSandbox
from .webhooks import (
    DEFAULT_RECEIPT_DELAYS,
    RECEIPTS,
    DeliveryRecord,
    GatewayIdentity,
    InboundMessage,
    ReceiptStatus,
    Subscription,
    WebhookDeliverer,
    WebhookEvent,
    WebhookTarget,
    message_event,
    parse_webhook_option,
    receipt_event,
)
from .wuts import WutsSandbox

__all__ = [
    "InboundRequest",
    "Reply",
    "RequestRecord",
    "Sandbox",
    "build_app",
    "parse_webhook_option",
    "running_sandbox",
]

#: Largest request body the sandbox reads: a 16 MiB image (every gateway's
#: limit) as base64 JSON is 21.3 MiB. Bigger bodies get the gateway's 413
#: before they are read, as a real gateway's front proxy would answer.
MAX_REQUEST_BYTES = 24 * 1024 * 1024

# Bodies larger than this are handled on a worker thread.
_INLINE_BODY_BYTES = 256 * 1024

_GATEWAYS: tuple[type[GatewaySandbox], ...] = (GowaSandbox, WahaSandbox, WawpSandbox, WutsSandbox)

#: Incoming images kept for the gateways' media URLs, and their byte budget.
_MAX_MEDIA = 100
_MAX_MEDIA_BYTES = 64 * 1024 * 1024
# File extensions as WAHA and gowa name downloaded media (".jpeg", docs/webhooks.md §1b, §2b).
_MEDIA_EXTENSIONS = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
_DIGITS = re.compile(r"[1-9]\d{6,14}")


class InboundRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /_sandbox/inbound`` (see :meth:`Sandbox.inbound`).

    ``image`` is base64; ``text`` is the text, or the image's caption.
    """

    provider: str
    from_: str = msgspec.field(name="from")
    text: str | None = None
    image: str | None = None
    mimetype: str | None = None
    filename: str | None = None
    push_name: str | None = None


class Reply(msgspec.Struct, frozen=True):
    """What to do with one gateway request.

    Attributes:
        response: the answer, or ``None`` to close the connection unanswered.
        delay: seconds to wait before answering (or closing).
        stored: the messages the request put in the outbox (their receipts
            are the shell's to fire).
    """

    response: HttpResponse | None
    delay: float = 0.0
    stored: tuple[StoredMessage, ...] = ()


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One request a sandbox gateway saw, and what became of it."""

    seq: int
    provider: str
    method: str
    path: str
    at: float
    status: int | None
    """The status answered; ``None`` when the connection was dropped."""
    fault: str | None = None
    stored: bool = False
    """Whether a message went to the outbox."""


class Sandbox:
    """Every sandbox gateway, sharing one outbox and one set of faults.

    Args:
        seed: makes message ids and probabilistic faults repeatable.
        max_messages: how many messages the outbox keeps.
        max_bytes: how many bytes of images and text the outbox keeps.
        clock: the time source (seconds since the epoch).
        webhooks: webhook targets in force from the start.
        time_scale: multiplies every webhook delay, timeout and deadline
            (receipts, retries, gowa's 30 s cap); ``0.01`` runs them 100 times faster.
        receipt_delays: seconds after the send answer when the sent,
            delivered and read receipts fire (before ``time_scale``).
        max_deliveries: how many webhook delivery attempts are remembered.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        max_messages: int = 1000,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
        webhooks: Iterable[WebhookTarget] = (),
        time_scale: float = 1.0,
        receipt_delays: Sequence[float] = DEFAULT_RECEIPT_DELAYS,
        max_deliveries: int = 1000,
    ) -> None:
        delays = tuple(float(d) for d in receipt_delays)
        if len(delays) != 3 or any(not 0 <= d <= 3600 for d in delays):
            raise ValueError("receipt_delays must be three delays of 0-3600 seconds")
        self.outbox = Outbox(max_messages, max_bytes=max_bytes)
        self.faults = FaultSet(seed=seed)
        #: Sends the webhooks (wamsg/sandbox/webhooks.py).
        self.webhook = WebhookDeliverer(
            self.faults,
            seed=seed,
            time_scale=time_scale,
            max_records=max_deliveries,
            clock=clock,
        )
        self.receipt_delays: tuple[float, float, float] = (delays[0], delays[1], delays[2])
        self._media: OrderedDict[tuple[str, str], tuple[bytes, str]] = OrderedDict()
        self._media_lock = threading.Lock()
        self.requests: deque[RequestRecord] = deque(maxlen=1000)
        self._request_seq = itertools.count(1)
        self._clock = clock
        #: Set while served by :func:`running_sandbox`.
        self.base_url: str | None = None
        self.handlers: dict[str, GatewaySandbox] = {
            gateway.provider: gateway(
                self.outbox,
                # Each gateway gets its own id sequence, repeatable by seed.
                seed=None if seed is None else f"{seed}:{gateway.provider}",
                clock=clock,
            )
            for gateway in _GATEWAYS
        }
        for target in webhooks:
            self.add_webhook_target(target)

    @property
    def providers(self) -> list[str]:
        """The provider names served, sorted."""
        return sorted(self.handlers)

    def credentials(self, provider: str, base_url: str | None = None) -> dict[str, Any]:
        """The client settings that reach ``provider`` on a sandbox at ``base_url``.

        ``base_url`` defaults to where this sandbox is being served.
        """
        handler = self.handlers.get(provider)
        if handler is None:
            raise KeyError(f"no sandbox provider {provider!r}; it has {', '.join(self.providers)}")
        root = base_url or self.base_url
        if root is None:
            raise ValueError("the sandbox is not being served; pass base_url")
        return handler.credentials(f"{root.rstrip('/')}/{provider}")

    def dsn(self, provider: str, base_url: str | None = None) -> str:
        """:meth:`credentials` as one DSN string (``WAMSG_DSN``, docs/configuration.md).

        The sandbox's credentials are published examples, so they are shown:
        ``wuts+http://sandbox-wuts-token@127.0.0.1:8026/wuts``.
        """
        from ..config import ProviderConfig

        settings = self.credentials(provider, base_url)
        return ProviderConfig(provider, **settings).to_dsn(reveal=True)

    def add_fault(self, fault: Fault) -> int:
        """Put a fault in force; returns its id."""
        return self.add_faults([fault])[0]

    def add_faults(self, faults: Iterable[Fault]) -> list[int]:
        """Put several faults in force, all or none; returns their ids.

        Raises:
            ValueError: a rule names a provider the sandbox does not serve.
        """
        rules = list(faults)
        for fault in rules:
            if fault.provider != "*" and fault.provider not in self.handlers:
                raise ValueError(
                    f"no sandbox provider {fault.provider!r}; it has {', '.join(self.providers)}"
                )
        return [state.id for state in self.faults.add_all(rules)]

    # -- webhooks ---------------------------------------------------------------

    def add_webhook(
        self,
        url: str,
        *,
        provider: str = "*",
        secret: str | None = None,
        events: Sequence[str] = ("receipt", "message"),
        hmac_version: int = 1,
    ) -> int:
        """Send ``provider``'s webhooks (``"*"``: every gateway's) to ``url``; returns its id.

        Raises:
            ValueError: a bad URL, provider, event kind or HMAC version.
        """
        fields: dict[str, Any] = {
            "url": url,
            "provider": provider,
            "secret": secret,
            "events": tuple(events),
            "hmac_version": hmac_version,
        }
        try:
            target = msgspec.convert(fields, WebhookTarget)
        except msgspec.ValidationError as exc:
            raise ValueError(str(exc)) from None
        return self.add_webhook_target(target)

    def add_webhook_target(self, target: WebhookTarget) -> int:
        """Put a :class:`WebhookTarget` (from ``parse_webhook_option``, say) in force; its id."""
        return self.webhook.add(target)

    def remove_webhook(self, webhook_id: int) -> bool:
        """Stop sending to a webhook target; False if there was none with that id."""
        return self.webhook.remove(webhook_id)

    @property
    def webhooks(self) -> list[Subscription]:
        """The webhook targets in force, oldest first."""
        return self.webhook.subscriptions()

    @property
    def deliveries(self) -> list[DeliveryRecord]:
        """Every webhook delivery attempt remembered, oldest first."""
        return list(self.webhook.records)

    async def wait_for_webhooks(self) -> None:
        """Wait until every webhook, retry and scheduled receipt has been sent."""
        await self.webhook.idle()

    def identity(self, provider: str, stored: StoredMessage | None = None) -> GatewayIdentity:
        """What ``provider``'s gateway says about itself in webhooks.

        ``stored`` picks the session (WAHA) or device (gowa) the message was sent from.
        """
        handler = self.handlers[provider]
        extra = stored.extra if stored is not None else {}
        if isinstance(handler, WahaSandbox):
            return GatewayIdentity(
                provider=provider,
                me=handler.me,
                push_name=handler.push_name,
                session=str(extra.get("session", handler.session)),
                environment=handler.environment,
            )
        if isinstance(handler, WawpSandbox):
            return GatewayIdentity(
                provider=provider,
                me=handler.me,
                push_name=handler.push_name,
                session=handler.session,
            )
        if isinstance(handler, GowaSandbox):
            jid = handler.jid_of(str(extra.get("device_id", handler.device_id)))
            return GatewayIdentity(provider=provider, me=jid, device_id=jid)
        if isinstance(handler, WutsSandbox):
            return GatewayIdentity(
                provider=provider,
                me=handler.me,
                device_id=handler.device_id,
                user_id=handler.user_id,
            )
        raise KeyError(f"{provider} sends no webhooks")

    def _receipt_builder(self, stored: StoredMessage) -> Callable[[ReceiptStatus], WebhookEvent]:
        identity = self.identity(stored.provider, stored)

        def build(status: ReceiptStatus) -> WebhookEvent:
            return receipt_event(identity, stored, status, now=self._clock(), rng=self.webhook.rng)

        return build

    async def early_receipts(self, stored: Iterable[StoredMessage]) -> dict[int, tuple[str, ...]]:
        """Deliver the receipts an ``early_receipt`` fault sends before the send answer.

        gowa#726 (docs/webhooks.md §6): the ack webhook reaches the receiver
        before the HTTP answer to the send. The delivered receipt (gowa: delivered
        and read) is sent and its first attempt awaited. Returns the statuses
        sent early, by outbox ``seq``.
        """
        early: dict[int, tuple[str, ...]] = {}
        for message in stored:
            provider = message.provider
            if not self.webhook.wants(provider, "receipt"):
                continue
            if self.faults.pick_webhook(provider, ("early_receipt",)) is None:
                continue
            statuses: tuple[ReceiptStatus, ...] = (
                ("delivered", "read") if provider == "gowa" else ("delivered",)
            )
            build = self._receipt_builder(message)
            for status in statuses:
                await self.webhook.send(build(status))
            early[message.seq] = statuses
        return early

    def schedule_receipts(
        self, stored: Iterable[StoredMessage], *, done: dict[int, tuple[str, ...]] | None = None
    ) -> None:
        """Fire each message's receipts (sent → delivered → read) at :attr:`receipt_delays`.

        Call it once the send answer is out. ``done`` holds receipts already
        sent early (see :meth:`early_receipts`). A ``reorder`` fault sends read
        before delivered.
        """
        for message in stored:
            provider = message.provider
            if provider not in RECEIPTS or not self.webhook.wants(provider, "receipt"):
                continue
            slots = dict(zip(("sent", "delivered", "read"), self.receipt_delays, strict=True))
            statuses = list(RECEIPTS[provider])
            if self.faults.pick_webhook(provider, ("reorder",)) is not None:
                statuses[-2], statuses[-1] = statuses[-1], statuses[-2]
            times = sorted(slots[s] for s in RECEIPTS[provider])
            already = (done or {}).get(message.seq, ())
            steps = [
                (delay, status)
                for delay, status in zip(times, statuses, strict=True)
                if status not in already
            ]
            self.webhook.start_receipts(steps, self._receipt_builder(message), provider=provider)

    def inbound(
        self,
        provider: str,
        *,
        from_: str,
        text: str | None = None,
        image: bytes | None = None,
        mimetype: str | None = None,
        filename: str | None = None,
        push_name: str | None = None,
        base_url: str | None = None,
    ) -> InboundMessage:
        """Simulate a message from a phone to ``provider``'s account: fires its ``message`` webhook.

        ``from_`` is a phone number (``+5511…``) or a chat id in the gateway's
        form; ``text`` is the text, or the caption of ``image`` (JPEG, PNG or
        WebP bytes), which the gateway then serves at its own media URL on
        ``base_url`` (default: where the sandbox is served). Must be called on
        the event loop that serves the sandbox; the webhook goes out in a task.

        Raises:
            ValueError: an unknown provider, no content, a bad number or image.
            RuntimeError: no running event loop.
        """
        handler = self.handlers.get(provider)
        if handler is None:
            raise ValueError(
                f"no sandbox provider {provider!r}; it has {', '.join(self.providers)}"
            )
        if text is None and image is None:
            raise ValueError("an inbound message needs text, an image or both")
        asyncio.get_running_loop()  # the webhook task needs one: fail before any state changes
        chat = _inbound_chat(provider, from_)
        rng = self.webhook.rng
        # Ids of messages sent from phones: "3A" and upper-case hex (iPhone) [I].
        short = "3A" + "".join(rng.choices("0123456789ABCDEF", k=18))
        message_id = f"false_{chat}_{short}" if provider in ("waha", "wawp") else short
        now = self._clock()
        media: dict[str, Any] = {}
        if image is not None:
            found = sniff(image[:16])
            if found not in _MEDIA_EXTENSIONS or (mimetype is not None and mimetype != found):
                raise ValueError("an inbound image must be JPEG, PNG or WebP bytes of that type")
            root = (base_url or self.base_url or "").rstrip("/")
            if not root:
                raise ValueError("the sandbox is not being served; pass base_url")
            extension = _MEDIA_EXTENSIONS[found]
            if provider in ("waha", "wawp"):
                # WAHA's media.url: {base}/api/files/<message id>.<ext> (§2b, §3b).
                name = f"{message_id}.{extension}"
                media["media_url"] = f"{root}/{provider}/api/files/{name}"
            elif provider == "gowa":
                # gowa's download path: statics/media/<unix>-<uuid>.<ext> (§1b).
                name = f"{int(now)}-{uuid.UUID(int=rng.getrandbits(128), version=4)}.{extension}"
                media["media_path"] = f"statics/media/{name}"
                media["media_url"] = f"{root}/gowa/statics/media/{name}"
            else:
                # WUTS: GET /messages/{message_id}/media (§4b).
                name = message_id
                media["media_url"] = f"{root}/wuts/messages/{message_id}/media"
            self._keep_media(provider, name, image, found)
            media.update(mimetype=found, filename=filename, size=len(image))
        message = InboundMessage(
            provider=provider,
            message_id=message_id,
            chat_id=chat,
            sent_at=now,
            text=text,
            push_name=push_name or "Sandbox Contact",
            **media,
        )
        event = message_event(self.identity(provider), message, now=now, rng=rng)
        self.webhook.start(event)
        return message

    def _keep_media(self, provider: str, name: str, data: bytes, mimetype: str) -> None:
        with self._media_lock:
            self._media[(provider, name)] = (data, mimetype)
            total = sum(len(d) for d, _ in self._media.values())
            while len(self._media) > 1 and (
                len(self._media) > _MAX_MEDIA or total > _MAX_MEDIA_BYTES
            ):
                _, (dropped, _) = self._media.popitem(last=False)
                total -= len(dropped)

    def media(self, provider: str, name: str) -> tuple[bytes, str] | None:
        """An inbound image's bytes and type, by the name in its gateway's media URL."""
        with self._media_lock:
            return self._media.get((provider, name))

    def dispatch(self, provider: str, request: HttpRequest) -> Reply:
        """Answer one gateway request, faults included. Pure: no I/O, no waiting.

        ``request.url`` is the path below the provider's prefix and the body
        is bytes.
        """
        handler = self.handlers[provider]
        fault = self.faults.pick(provider, request)
        with recording_stores() as stored:
            reply = self._answer(handler, fault, request)
        self.requests.append(
            RequestRecord(
                seq=next(self._request_seq),
                provider=provider,
                method=request.method,
                path=request.url,
                at=self._clock(),
                status=None if reply.response is None else reply.response.status,
                fault=None if fault is None else fault.kind,
                stored=bool(stored),
            )
        )
        if stored:
            reply = msgspec.structs.replace(reply, stored=tuple(stored))
        return reply

    @staticmethod
    def _answer(handler: GatewaySandbox, fault: Fault | None, request: HttpRequest) -> Reply:
        if fault is None:
            return Reply(handler.handle(request))
        if fault.kind == "auth":
            return Reply(handler.auth_error())
        if fault.answer_status is not None:
            status = fault.answer_status
            answer = handler.error(status, f"{reason_phrase(status)} (sandbox fault)")
            if fault.retry_after is not None:
                answer = msgspec.structs.replace(
                    answer, headers={**answer.headers, "retry-after": str(fault.retry_after)}
                )
            return Reply(answer)
        if fault.kind == "slow":
            return Reply(handler.handle(request), delay=fault.delay)
        # drop: the gateway did the work, the client never hears of it
        handler.handle(request)
        return Reply(None)


def _inbound_chat(provider: str, sender: str) -> str:
    """The sender's chat id in ``provider``'s form: ``<digits>@c.us`` (WAHA, Wawp) or a JID."""
    if "@" in sender:
        return sender
    digits = re.sub(r"[\s()+.-]", "", sender)
    if not _DIGITS.fullmatch(digits):
        raise ValueError("from must be a phone number (7-15 digits) or a chat id")
    return f"{digits}@c.us" if provider in ("waha", "wawp") else f"{digits}@s.whatsapp.net"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(data), content_type="application/json"
    )


def _plain(answer: HttpResponse) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


def _int_param(request: web.Request, name: str) -> int | None:
    """The path parameter ``name`` as an int; ``None`` when it is not one."""
    try:
        return int(request.match_info[name])
    except ValueError:
        return None


def _inbox_page() -> bytes:
    return resources.files(__package__).joinpath("inbox.html").read_bytes()


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving ``sandbox``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    page = _inbox_page()

    async def gateway(request: web.Request) -> web.StreamResponse:
        provider = request.match_info["provider"]
        handler = sandbox.handlers.get(provider)
        if handler is None:
            raise web.HTTPNotFound(text=f"no sandbox provider {provider!r}")
        too_large = handler.error(413, "Request Entity Too Large")
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            return _plain(too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked, with no length up front
            return _plain(too_large)
        neutral = HttpRequest(
            method=request.method,
            url="/" + request.match_info["path"],
            query=tuple(request.query.items()),
            headers=tuple(request.headers.items()),
            body=body,
        )
        if len(neutral.body) > _INLINE_BODY_BYTES:  # type: ignore[arg-type]
            # Parsing a 16 MiB multipart upload takes about a second: off the
            # event loop, so the inbox and other requests are not held up.
            reply = await asyncio.to_thread(sandbox.dispatch, provider, neutral)
        else:
            reply = sandbox.dispatch(provider, neutral)
        # early_receipt (gowa#726): the receipt reaches the receiver first.
        early = await sandbox.early_receipts(reply.stored) if reply.stored else {}
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.response is None:
            # Close after reading: aiohttp writes nothing to a closed transport.
            if request.transport is not None:
                request.transport.close()
            # The gateway sent the message all the same: its receipts follow.
            sandbox.schedule_receipts(reply.stored, done=early)
            return web.Response()
        answer = _plain(reply.response)
        if reply.stored:
            # Receipts only once the answer is written: a receipt racing
            # ahead of the answer is the early_receipt fault's job.
            await answer.prepare(request)
            await answer.write_eof()
            sandbox.schedule_receipts(reply.stored, done=early)
        return answer

    async def inbox(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def providers(request: web.Request) -> web.Response:
        root = f"{request.scheme}://{request.host}"
        return _json(
            {
                "providers": [
                    {"name": name, "credentials": sandbox.credentials(name, root)}
                    for name in sandbox.providers
                ]
            }
        )

    async def messages(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="after must be an integer") from None
        found = sandbox.outbox.find(
            provider=request.query.get("provider") or None,
            chat_id=request.query.get("chat") or None,
            after=after,
        )
        return _json(
            {
                "epoch": sandbox.outbox.epoch,
                "last_seq": sandbox.outbox.last_seq,
                "messages": [m.summary() for m in found],
            }
        )

    async def clear(request: web.Request) -> web.Response:
        sandbox.outbox.clear()
        return web.Response(status=204)

    async def image(request: web.Request) -> web.Response:
        seq = _int_param(request, "seq")
        message = None if seq is None else sandbox.outbox.get(seq)
        if message is None or message.image_bytes is None:
            raise web.HTTPNotFound(text="no stored image with that number")
        return web.Response(
            body=message.image_bytes,
            content_type=message.mimetype or "application/octet-stream",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def list_faults(request: web.Request) -> web.Response:
        return _json({"faults": sandbox.faults.states()})

    async def add_faults(request: web.Request) -> web.Response:
        try:
            data = msgspec.json.decode(await request.read(), type=Fault | list[Fault])
            ids = sandbox.add_faults(data if isinstance(data, list) else [data])
        except (msgspec.DecodeError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        return _json({"ids": ids}, status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        sandbox.faults.clear()
        return web.Response(status=204)

    async def remove_fault(request: web.Request) -> web.Response:
        fault_id = _int_param(request, "id")
        if fault_id is None or not sandbox.faults.remove(fault_id):
            raise web.HTTPNotFound(text="no fault with that id")
        return web.Response(status=204)

    async def requests(request: web.Request) -> web.Response:
        return _json({"requests": list(sandbox.requests)})

    async def list_webhooks(request: web.Request) -> web.Response:
        return _json({"webhooks": [sub.view() for sub in sandbox.webhooks]})

    async def add_webhooks(request: web.Request) -> web.Response:
        try:
            data = msgspec.json.decode(
                await request.read(), type=WebhookTarget | list[WebhookTarget]
            )
        except (msgspec.DecodeError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        targets = data if isinstance(data, list) else [data]
        return _json({"ids": [sandbox.add_webhook_target(t) for t in targets]}, status=201)

    async def clear_webhooks(request: web.Request) -> web.Response:
        sandbox.webhook.clear()
        return web.Response(status=204)

    async def remove_webhook(request: web.Request) -> web.Response:
        webhook_id = _int_param(request, "id")
        if webhook_id is None or not sandbox.remove_webhook(webhook_id):
            raise web.HTTPNotFound(text="no webhook with that id")
        return web.Response(status=204)

    async def deliveries(request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="after must be an integer") from None
        return _json(
            {"last_seq": sandbox.webhook.last_seq, "deliveries": sandbox.webhook.find(after=after)}
        )

    async def inbound(request: web.Request) -> web.Response:
        try:
            data = msgspec.json.decode(await request.read(), type=InboundRequest)
            image = None if data.image is None else base64.b64decode(data.image, validate=True)
            message = sandbox.inbound(
                data.provider,
                from_=data.from_,
                text=data.text,
                image=image,
                mimetype=data.mimetype,
                filename=data.filename,
                push_name=data.push_name,
                base_url=f"{request.scheme}://{request.host}",
            )
        except (msgspec.DecodeError, ValueError, binascii.Error) as exc:
            return _json({"error": str(exc)}, status=400)
        return _json(msgspec.to_builtins(message), status=201)

    async def media(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        handler = sandbox.handlers[provider]
        asked = HttpRequest(
            method="GET",
            url=request.path,
            query=tuple(request.query.items()),
            headers=tuple(request.headers.items()),
        )
        if not handler.media_authorized(asked):
            return _plain(handler.auth_error())
        found = sandbox.media(provider, request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such media")
        data, mimetype = found
        # WUTS answers its media endpoint as octet-stream (docs/webhooks.md §4b).
        content_type = "application/octet-stream" if provider == "wuts" else mimetype
        return web.Response(
            body=data, content_type=content_type, headers={"X-Content-Type-Options": "nosniff"}
        )

    async def close_webhooks(app: web.Application) -> None:
        await sandbox.webhook.aclose()

    app.router.add_get("/", inbox)
    app.router.add_get("/_sandbox/providers", providers)
    app.router.add_get("/_sandbox/messages", messages)
    app.router.add_delete("/_sandbox/messages", clear)
    app.router.add_get("/_sandbox/messages/{seq}/image", image)
    app.router.add_get("/_sandbox/faults", list_faults)
    app.router.add_post("/_sandbox/faults", add_faults)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_delete("/_sandbox/faults/{id}", remove_fault)
    app.router.add_get("/_sandbox/requests", requests)
    app.router.add_get("/_sandbox/webhooks", list_webhooks)
    app.router.add_post("/_sandbox/webhooks", add_webhooks)
    app.router.add_delete("/_sandbox/webhooks", clear_webhooks)
    app.router.add_get("/_sandbox/webhooks/deliveries", deliveries)
    app.router.add_delete("/_sandbox/webhooks/{id}", remove_webhook)
    app.router.add_post("/_sandbox/inbound", inbound)
    # Incoming media where each gateway serves it; before the gateways' catch-all.
    app.router.add_get("/{provider:waha|wawp}/api/files/{name}", media)
    app.router.add_get("/{provider:gowa}/statics/media/{name}", media)
    app.router.add_get("/{provider:wuts}/messages/{name}/media", media)
    app.router.add_route("*", "/{provider}/{path:.*}", gateway)
    app.on_cleanup.append(close_webhooks)
    return app


@asynccontextmanager
async def running_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
    faults: Iterable[Fault] = (),
    sandbox: Sandbox | None = None,
    webhooks: Iterable[WebhookTarget] = (),
) -> AsyncIterator[tuple[Sandbox, str]]:
    """Serve a sandbox in this event loop; yields it and its base URL.

    On exit every webhook task is cancelled and awaited, and the webhook
    HTTP session closed.

    Args:
        host: the address to bind; 127.0.0.1 keeps it off the network.
        port: the port; 0 picks a free one.
        seed: makes ids and probabilistic faults repeatable.
        faults: faults in force from the start.
        sandbox: serve this sandbox instead of a new one.
        webhooks: webhook targets to add.
    """
    box = sandbox if sandbox is not None else Sandbox(seed=seed)
    for fault in faults:
        box.add_fault(fault)
    for target in webhooks:
        box.add_webhook_target(target)
    # shutdown_timeout: a slow-fault answer still waiting must not hold up Ctrl-C.
    runner = web.AppRunner(build_app(box), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        assert server.sockets  # type: ignore[attr-defined]
        bound_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        # A wildcard address is not one to connect to: show loopback instead.
        shown_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        box.base_url = f"http://{shown_host}:{bound_port}"
        yield box, box.base_url
    finally:
        box.base_url = None
        await runner.cleanup()
