"""The async client: the one place in wamsg that awaits.

``Client`` checks and encodes a message with the provider's adapter (no
I/O), sends it once through a transport under one deadline, and decodes the
answer. It never sends a request twice: retries, rate limits and failover
are built on top of this loop, only for failures whose outcome is
``not_sent``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, NoReturn

import anyio
import msgspec

from ._redact import redact
from ._streams import prepare_media
from .errors import (
    ConfigError,
    InvalidMessage,
    Outcome,
    ProviderError,
    SendTimeout,
    TransportError,
    WamsgError,
)
from .http import HttpRequest
from .models import Attempt, Image, ImageInput, Media, Message, Recipient, SendResult, Text
from .providers import Adapter, create_adapter
from .providers.base import check_message
from .transports.base import Timeouts, Transport

__all__ = ["Client"]

logger = logging.getLogger("wamsg")


def _valid_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _mentions(mentions: Sequence[str | Recipient]) -> tuple[str | Recipient, ...]:
    if isinstance(mentions, str):
        raise InvalidMessage("mentions must be a list of numbers, not a single string")
    return tuple(mentions)


class Client:
    """Send WhatsApp messages through one gateway.

    ::

        async with wamsg.Client("wawp", instance_id="...", access_token="...") as client:
            result = await client.send_text("+55 11 99999-0000", "Hello")

    Args:
        provider: a registered provider name (``"wawp"``) or an adapter instance.
        transport: how requests are sent; by default an
            :class:`~wamsg.transports.AiohttpTransport` owned by the client.
        timeout: the deadline of one send call, in seconds, everything
            included; None for none. Each call can override it.
        connect_timeout: to open a connection.
        read_timeout: between reads of a text send's answer.
        media_read_timeout: between reads of a media send's answer (the
            gateway may download or upload the file before it answers).
        **settings: the provider's settings (``instance_id``, ``access_token``...).
    """

    def __init__(
        self,
        provider: str | Adapter,
        *,
        transport: Transport | None = None,
        timeout: float | None = 60.0,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 30.0,
        media_read_timeout: float | None = 120.0,
        **settings: Any,
    ) -> None:
        if isinstance(provider, str):
            self.adapter: Adapter = create_adapter(provider, **settings)
        else:
            if settings:
                raise ConfigError(
                    "provider settings go to the adapter when it is passed as an instance; "
                    f"got {', '.join(sorted(settings))}"
                )
            if isinstance(provider, type) or not isinstance(provider, Adapter):
                raise ConfigError(
                    f"provider must be a name or an adapter, not {type(provider).__name__}"
                )
            self.adapter = provider
        for name, value in (
            ("timeout", timeout),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("media_read_timeout", media_read_timeout),
        ):
            if value is not None and not _valid_seconds(value):
                raise ConfigError(f"{name} must be a positive, finite number of seconds or None")
        self.provider = self.adapter.name
        self.timeout = timeout
        self._timeouts = {
            "text": Timeouts(connect=connect_timeout, read=read_timeout),
            "media": Timeouts(connect=connect_timeout, read=media_read_timeout),
        }
        if transport is None:
            from .transports.aiohttp import AiohttpTransport

            transport = AiohttpTransport()
        self.transport = transport
        self._transport_enforces_timeouts = bool(getattr(transport, "enforces_timeouts", False))
        self._closed = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<wamsg.Client {self.adapter!r}{state}>"

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Client:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> NoReturn:
        raise ConfigError("wamsg.Client is async: use `async with wamsg.Client(...) as client:`")

    def __exit__(self, *args: object) -> None:  # pragma: no cover - __enter__ always raises
        pass

    async def aclose(self) -> None:
        """Close the transport. Sending afterwards raises ConfigError."""
        if not self._closed:
            self._closed = True
            await self.transport.aclose()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this wamsg.Client is closed; create a new one")

    # -- sending -----------------------------------------------------------

    async def send_text(
        self,
        to: str | Recipient,
        text: str,
        *,
        reply_to: str | None = None,
        mentions: Sequence[str | Recipient] = (),
        timeout: float | None = None,
    ) -> SendResult:
        """Send a text message. See :meth:`send` for what it raises."""
        message = Text(to=to, text=text, reply_to=reply_to, mentions=_mentions(mentions))
        return await self.send(message, timeout=timeout)

    async def send_image(
        self,
        to: str | Recipient,
        image: ImageInput,
        *,
        caption: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        reply_to: str | None = None,
        mentions: Sequence[str | Recipient] = (),
        view_once: bool = False,
        timeout: float | None = None,
    ) -> SendResult:
        """Send an image from a URL, a path, bytes, a file object or an async byte stream.

        A string is a URL when it starts with ``http://`` or ``https://`` and
        a path otherwise. See :meth:`send` for what it raises.
        """
        media = Media.coerce(image, filename=filename, mimetype=mimetype)
        message = Image(
            to=to,
            image=media,
            caption=caption,
            reply_to=reply_to,
            mentions=_mentions(mentions),
            view_once=view_once,
        )
        return await self.send(message, timeout=timeout)

    async def send(self, message: Message, *, timeout: float | None = None) -> SendResult:
        """Send one message, once.

        Raises:
            InvalidMessage, UnsupportedFeature: before any I/O.
            ConfigError: the client is closed or misused.
            TransportError: no answer; ``outcome`` says whether it may have sent.
            ProviderError: the gateway refused; see ``outcome``, ``retryable``
                and ``retry_after``.
        """
        self._check_open()
        if not isinstance(message, Text | Image):
            raise ConfigError(
                f"message must be a wamsg Text or Image, not {type(message).__name__}"
            )
        deadline = self.timeout if timeout is None else timeout
        if deadline is not None and not _valid_seconds(deadline):
            raise ConfigError("timeout must be a positive, finite number of seconds")
        if isinstance(message, Image) and message.image.url is None and message.image.head is None:
            # The capability checks first (they need no bytes), so that an
            # image the gateway cannot take is refused before its file is read
            # or its single-use stream consumed; then read the first bytes
            # (and a file object's size), under the call's deadline, so the
            # adapter can tell the type and check limits before any request.
            check_message(self.provider, self.adapter.capabilities, message)
            try:
                with anyio.fail_after(deadline):
                    media = await prepare_media(message.image)
            except TimeoutError:
                raise SendTimeout(
                    f"{self.provider}: reading the image took longer than the "
                    f"{deadline}s deadline; nothing was sent",
                    provider=self.provider,
                    outcome=Outcome.NOT_SENT,
                ) from None
            message = msgspec.structs.replace(message, image=media)
        request = self.adapter.encode(message)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "wamsg send %s via %s to %s",
                type(message).__name__.lower(),
                self.provider,
                message.recipient.masked,
            )
        started = time.perf_counter()
        try:
            result, status = await self._send_once(request, deadline)
        except WamsgError as exc:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "wamsg %s failed after %.3fs: %s (outcome=%s)",
                    self.provider,
                    time.perf_counter() - started,
                    exc.message,
                    exc.outcome,
                )
            raise
        attempt = Attempt(
            provider=self.provider,
            duration=time.perf_counter() - started,
            status_code=status,
        )
        return msgspec.structs.replace(result, attempts=(attempt,))

    async def _send_once(
        self, request: HttpRequest, deadline: float | None
    ) -> tuple[SendResult, int]:
        base = self._timeouts[request.kind]
        timeouts = base if deadline is None else msgspec.structs.replace(base, total=deadline)
        try:
            if self._transport_enforces_timeouts:
                # Fast path: the transport applies `timeouts.total` itself
                # (an anyio cancel scope costs ~25 µs a call on asyncio).
                response = await self.transport.send(request, timeouts=timeouts)
            else:
                with anyio.fail_after(deadline):
                    response = await self.transport.send(request, timeouts=timeouts)
        except TimeoutError:
            raise SendTimeout(
                f"{self.provider}: no answer within the {deadline}s deadline; "
                "the message may have been sent",
                provider=self.provider,
            ) from None
        except TransportError as exc:
            if not exc.provider:
                exc.provider = self.provider
            raise
        except WamsgError:
            raise
        except Exception as exc:
            # A third-party transport broke its contract (it should raise
            # wamsg errors). It may have written the request: outcome unknown.
            raise TransportError(
                f"transport {type(self.transport).__name__} raised "
                f"{type(exc).__name__}: {redact(str(exc), request.secrets())}",
                provider=self.provider,
                outcome=Outcome.UNKNOWN,
            ) from None
        try:
            return self.adapter.decode(response), response.status
        except WamsgError:
            raise
        except Exception as exc:
            # An adapter must raise wamsg errors only; one that crashes on a
            # hostile body must not hide that the gateway answered (a 2xx may
            # mean the message is out), so this is never "not sent".
            raise ProviderError(
                f"{self.provider}: could not read the answer (HTTP {response.status}): "
                f"{type(exc).__name__}",
                provider=self.provider,
                status_code=response.status,
                outcome=Outcome.UNKNOWN,
            ) from None
