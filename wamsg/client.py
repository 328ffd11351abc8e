"""The async client: one gateway, sent to safely.

``Client`` checks and encodes a message with the provider's adapter (no
I/O), sends it through a transport and decodes the answer. Around that, the
delivery loop it shares with :class:`~wamsg.Router` (``_delivery.py``) adds
idempotency keys, retries of what certainly did not go out, and one
deadline per call; this module adds the gateway instance's own limits: its
rate, pacing and sends in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import msgspec

from ._delivery import Progress, Sender, Target, valid_seconds
from ._redact import redact
from ._streams import prepare_media
from .config import Config, ProviderConfig, load_config
from .errors import (
    ConfigError,
    Outcome,
    ProviderError,
    SendTimeout,
    TransportError,
    UnsupportedFeature,
    WamsgError,
)
from .hooks import Hooks
from .http import HttpRequest, HttpResponse
from .idempotency import DedupeStore
from .limits import InFlightLimiter, Limits, LocalInFlightLimiter, LocalRateLimiter, RateLimiter
from .models import Image, InboundMessage, Message, SendResult
from .providers import Adapter, create_adapter
from .providers.base import check_message, error_from_response
from .retry import RetryPolicy
from .transports.base import Timeouts, Transport

__all__ = ["Client"]

logger = logging.getLogger("wamsg")


class Client(Sender):
    """Send WhatsApp messages through one gateway.

    ::

        async with wamsg.Client("wawp", instance_id="...", access_token="...") as client:
            result = await client.send_text("+55 11 99999-0000", "Hello")

    Args:
        provider: a registered provider name (``"wawp"``) or an adapter instance.
        transport: how requests are sent; by default an
            :class:`~wamsg.transports.AiohttpTransport` owned by the client.
        timeout: the deadline of one send call, in seconds, everything
            included (limits, attempts, backoff); None for none. Each call
            can override it.
        connect_timeout: to open a connection for a text send.
        read_timeout: between reads of a text send's answer.
        media_connect_timeout: to open a connection for a media send
            (defaults to ``connect_timeout``).
        media_read_timeout: between reads of a media send's answer (the
            gateway may download or upload the file before it answers).
        retry: when and how often failed sends are tried again; only
            failures whose outcome is ``not_sent`` are, by default.
        limits: the rate, burst, pacing and sends in flight this gateway
            instance is held to (none by default).
        rate_limiter: a shared :class:`~wamsg.RateLimiter` to use instead of
            the in-process one built from ``limits`` (``wamsg.redis`` has
            one shared by every worker).
        in_flight_limiter: a shared :class:`~wamsg.InFlightLimiter` to use
            instead of the in-process one built from ``limits.max_in_flight``.
        dedupe: the idempotency store: True for an in-memory one (the
            default), a :class:`~wamsg.DedupeStore` to share one, False for none.
        hooks: callbacks at each step of a send.
        name: this gateway instance's name in logs and in shared stores (a
            :class:`~wamsg.Router`'s cooldowns); ``from_config`` uses the
            file's provider name. Never put a secret or a phone number here.
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
        media_connect_timeout: float | None = None,
        media_read_timeout: float | None = 120.0,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        rate_limiter: RateLimiter | None = None,
        in_flight_limiter: InFlightLimiter | None = None,
        dedupe: DedupeStore | bool = True,
        hooks: Hooks | None = None,
        name: str | None = None,
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
        for option, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("media_connect_timeout", media_connect_timeout),
            ("media_read_timeout", media_read_timeout),
        ):
            if value is not None and not valid_seconds(value):
                raise ConfigError(f"{option} must be a positive, finite number of seconds or None")
        self._configure(timeout=timeout, retry=retry, dedupe=dedupe, hooks=hooks)
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError(f"limits must be a wamsg.Limits, not {type(limits).__name__}")
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
            raise ConfigError("rate_limiter must have an async acquire(recipient, deadline=)")
        self._provider = self.adapter.name
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError("name must be a non-empty string")
        self.name = name
        self.limits = limits
        self._rate_limiter = rate_limiter
        if rate_limiter is None and limits is not None and limits.paces:
            self._rate_limiter = LocalRateLimiter(limits)
        if in_flight_limiter is not None and not isinstance(in_flight_limiter, InFlightLimiter):
            raise ConfigError(
                "in_flight_limiter must have async acquire(deadline=) and release(token)"
            )
        if in_flight_limiter is None and limits is not None and limits.max_in_flight is not None:
            in_flight_limiter = LocalInFlightLimiter(limits.max_in_flight)
        self._in_flight = in_flight_limiter
        self._forwards_keys = self.adapter.capabilities.client_message_id
        self._timeouts = {
            "text": Timeouts(connect=connect_timeout, read=read_timeout),
            "media": Timeouts(
                connect=connect_timeout if media_connect_timeout is None else media_connect_timeout,
                read=media_read_timeout,
            ),
        }
        if transport is None:
            from .transports.aiohttp import AiohttpTransport

            transport = AiohttpTransport()
        self.transport = transport
        self._transport_enforces_timeouts = bool(getattr(transport, "enforces_timeouts", False))
        self._targets: tuple[Target, ...] = (self,)
        self._closed = False

    # -- configuration (wamsg.config, docs/configuration.md) -------------------

    @classmethod
    def from_dsn(cls, dsn: str, **options: Any) -> Client:
        """A client for the provider and settings a DSN describes.

        ::

            async with wamsg.Client.from_dsn("wuts://TOKEN@api.wuts.com.br") as client: ...

        Args:
            dsn: ``<provider>[+http|+https]://[user[:password]@]host[:port][/path][?k=v]``.
            **options: the client's other keyword arguments (``transport``,
                ``timeout``, ``retry``, ``limits``...).
        """
        return cls(ProviderConfig.from_dsn(dsn).create_adapter(), **options)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, prefix: str = "WAMSG_", **options: Any
    ) -> Client:
        """A client configured by ``WAMSG_DSN``, or ``WAMSG_PROVIDER`` and ``WAMSG_<SETTING>``.

        See :meth:`wamsg.ProviderConfig.from_env`; ``env`` defaults to
        ``os.environ``, and ``options`` are the client's keyword arguments.
        """
        config = ProviderConfig.from_env(env, prefix=prefix)
        return cls(config.create_adapter(), **options)

    @classmethod
    def from_config(
        cls,
        config: Config | ProviderConfig | str | os.PathLike[str],
        name: str | None = None,
        **options: Any,
    ) -> Client:
        """A client for one provider of a configuration file (:func:`wamsg.load_config`).

        Args:
            config: a :class:`~wamsg.Config`, a TOML file's path or text, or
                a :class:`~wamsg.ProviderConfig`.
            name: the provider's name in the file (default: the first in
                its failover order).
            **options: keyword arguments that override the file's
                ``[providers.NAME.client]`` options (``transport``...).
        """
        if isinstance(config, ProviderConfig):
            return cls(config.create_adapter(), **options)
        if not isinstance(config, Config):
            config = load_config(config)
        key = config.failover[0] if name is None else name
        in_file = config.client_options(key)
        if "limits" in in_file:
            try:
                in_file["limits"] = Limits(**in_file["limits"])
            except ConfigError as exc:
                where = f"{config.source} [providers.{key}.client] limits"
                raise ConfigError(f"{where}: {exc.message}") from None
        return cls(config.provider(key).create_adapter(), **{"name": key, **in_file, **options})

    @property
    def provider(self) -> str:
        """The provider's name (``"wawp"``...)."""
        return self._provider

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<wamsg.Client {self.adapter!r}{state}>"

    async def fetch_media(self, message: InboundMessage, *, timeout: float | None = None) -> bytes:
        """Download the image of an incoming message (``event.message``) from this gateway.

        The adapter builds the request with this client's credentials
        (``media_request``), and sends them only to this gateway's host: a
        media URL on any other host is refused before any I/O. The answer is
        read up to the transport's ``max_body`` (8 MiB by default; raise it on
        the transport for bigger files).

        Args:
            message: an :class:`~wamsg.webhooks.InboundMessage` from
                :func:`wamsg.webhooks.parse` for this gateway.
            timeout: seconds for the whole download (default: the client's).

        Raises:
            InvalidMessage: no media the gateway kept, or not on its host.
            UnsupportedFeature: this adapter cannot fetch media.
            ProviderError: the gateway refused (expired, not found, auth...).
            TransportError: the download failed on the way.
        """
        self._check_open()
        build = getattr(self.adapter, "media_request", None)
        if build is None:
            raise UnsupportedFeature(
                f"{self.provider}: this adapter cannot fetch incoming media",
                provider=self.provider,
                feature="media_request",
            )
        request: HttpRequest = build(message)
        limit = self.timeout if timeout is None else timeout
        try:
            response = await self._exchange(request, limit)
        except SendTimeout:
            # A GET sends nothing: the timeout texts about messages do not apply.
            raise SendTimeout(
                f"{self.provider}: the media download did not finish in time",
                provider=self.provider,
                outcome=Outcome.NOT_SENT,
            ) from None
        content_type = (response.header("content-type") or "").lower()
        # An image is never JSON: a JSON 200 is an error report (WUTS's
        # {"success": false, "status": "retry_requested"}, docs/webhooks.md §4).
        if 200 <= response.status < 300 and "json" not in content_type:
            if response.truncated:
                raise ProviderError(
                    f"{self.provider}: the media is larger than the transport reads "
                    "(max_body); raise it on the transport",
                    provider=self.provider,
                    status_code=response.status,
                    outcome=Outcome.REJECTED,
                )
            return response.body
        raise error_from_response(self.provider, response, secrets=request.secrets())

    async def _close(self) -> None:
        """Close the transport (see :meth:`aclose`)."""
        await self.transport.aclose()

    # -- one attempt -------------------------------------------------------

    async def _prepare(
        self, message: Message, deadline: float | None
    ) -> tuple[Message, Sequence[Target]]:
        if isinstance(message, Image):
            message = await prepare_image(self.provider, self.adapter, message, deadline)
        return message, self._targets

    async def _attempt(
        self, message: Message, deadline: float | None, progress: Progress
    ) -> tuple[SendResult, int]:
        """One try: wait for this gateway's limits, then send and decode."""
        slots = self._in_flight
        token: object = None
        if slots is not None:
            try:
                token = await slots.acquire(deadline=deadline)
            except TransportError as exc:
                if not exc.provider:
                    exc.provider = self.provider
                raise
        try:
            if self._rate_limiter is not None:
                try:
                    await self._rate_limiter.acquire(message.recipient.value, deadline=deadline)
                except TransportError as exc:
                    # A limiter does not know which gateway it paces (a shared
                    # one may pace several): name it here, as the slot wait
                    # and every other error of this client do.
                    if not exc.provider:
                        exc.provider = self.provider
                    raise
            request = self.adapter.encode(message)
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SendTimeout(
                        f"{self.provider}: the deadline passed before the request; "
                        "nothing was sent",
                        provider=self.provider,
                        outcome=Outcome.NOT_SENT,
                    )
            progress.sending = True
            return await self._send_once(request, remaining)
        finally:
            if slots is not None:
                await slots.release(token)

    async def _send_once(
        self, request: HttpRequest, remaining: float | None
    ) -> tuple[SendResult, int]:
        response = await self._exchange(request, remaining)
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

    async def _exchange(self, request: HttpRequest, remaining: float | None) -> HttpResponse:
        """Send ``request`` once through the transport, errors mapped to wamsg's."""
        base = self._timeouts[request.kind]
        timeouts = base if remaining is None else msgspec.structs.replace(base, total=remaining)
        try:
            if self._transport_enforces_timeouts:
                # Fast path: the transport applies `timeouts.total` itself
                # (an anyio cancel scope costs ~25 µs a call on asyncio).
                response = await self.transport.send(request, timeouts=timeouts)
            else:
                with anyio.fail_after(remaining):
                    response = await self.transport.send(request, timeouts=timeouts)
        except TimeoutError:
            raise SendTimeout(
                f"{self.provider}: no answer before the call's deadline; "
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
        return response


async def prepare_image(
    provider: str, adapter: Adapter, message: Image, deadline: float | None
) -> Image:
    """Check an image against the gateway, then read its first bytes (and size).

    The capability checks come first (they need no bytes), so that an image
    the gateway cannot take is refused before its file is read or its
    single-use stream consumed; the first bytes then let the adapter tell
    the type and check limits before any request.
    """
    if message.image.url is not None or message.image.head is not None:
        return message
    check_message(provider, adapter.capabilities, message)
    try:
        with anyio.fail_after(None if deadline is None else deadline - time.monotonic()):
            media = await prepare_media(message.image)
    except TimeoutError:
        raise SendTimeout(
            f"{provider}: reading the image took longer than the deadline; nothing was sent",
            provider=provider,
            outcome=Outcome.NOT_SENT,
        ) from None
    return msgspec.structs.replace(message, image=media)
