"""A gowa gateway in miniature: the pure ``handle(HttpRequest) -> HttpResponse``.

It answers like go-whatsapp-web-multidevice v9.2.0 (providers.md §3):

- Fiber's Basic-auth middleware first (§3.1): a plain-text 401 with
  ``WWW-Authenticate`` for a missing or wrong ``Authorization``; the sandbox
  requires ``sandbox`` / ``sandbox-pass`` unless built with ``basic_auth=None``.
- Then the device middleware (§3.1, G9): ``X-Device-Id`` (URL-decoded, with
  ``?device_id=`` as fallback) names a device by id or JID; none given picks
  the only device; an unknown one is 404 ``DEVICE_NOT_FOUND``.
- ``POST /send/message`` (JSON, decoded with the adapter's own ``_TextBody``)
  and ``POST /send/image`` (multipart/form-data parsed with the stdlib email
  parser, or JSON with ``image_url``) with gowa's validation (§3.2, §3.3, G4),
  recipient rules (§3.4, G6) and answers (§3.5 success, §3.6 errors).
- Anything else is Fiber's own plain-text 404 ``Cannot POST /path`` or 405.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import math
import re
import time
from base64 import b64decode
from binascii import Error as BinasciiError
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from .._mediatype import guess_from_name, sniff
from ..http import HttpRequest, HttpResponse
from ..providers.gowa import GowaAdapter, _Envelope, _TextBody
from .base import GatewaySandbox, body_bytes
from .outbox import Outbox

__all__ = ["GowaSandbox"]

_JSON = {"content-type": "application/json"}
_TEXT = {"content-type": "text/plain; charset=utf-8"}
_TEXT_PATH = "/send/message"
_IMAGE_PATH = "/send/image"
#: The sandbox's own WhatsApp account: the default device's JID (§3.1: a device
#: is named by its id or by its JID).
_SANDBOX_JID = "15550000000@s.whatsapp.net"

#: gowa's codes for plain statuses (§3.6), for injected faults. Statuses gowa
#: never answers itself (429 from a proxy, 502) get the upper-snake reason
#: phrase: gowa-shaped, unknown to clients, so they keep their HTTP meaning.
#: gowa's only own 429, ``WA_REACHOUT_TIMELOCK``, lasts hours; pass it as
#: ``code`` to inject it.
_CODE_FOR_STATUS = {
    400: "VALIDATION_ERROR",
    401: "AUTHENTICATION_ERROR",
    404: "NOT_FOUND",
    408: "CONTEXT_ERROR",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "DEVICE_MANAGER_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

#: What the upload validator lets through, by the part's Content-Type (§3.3, G4).
_UPLOAD_TYPES = {"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/png": "image/png"}
#: The extensions DownloadImageFromURL accepts (§3.3, G7).
_URL_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
#: Disappearing-message timers gowa accepts (§3.2, G4).
_DURATIONS = frozenset({0, 86400, 604800, 7776000})
#: Bare ``phone`` values up to this length are users, longer ones groups (§3.4).
_MAX_PHONE_LENGTH = 15
# Users must be real phone numbers to pass IsOnWhatsApp (§3.4); the sandbox
# takes any E.164-sized number as "on WhatsApp".
_USER = re.compile(r"[1-9]\d{6,14}")
_GROUP = re.compile(r"\d{5,}(-\d{5,})?")
_DIGITS = re.compile(r"\d{5,}")
_GO_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True, "on": True}
_GO_BOOL.update({"0": False, "f": False, "F": False, "FALSE": False, "false": False})
_GO_BOOL.update({"False": False, "": False})


class _Refusal(Exception):
    """A request gowa refuses, carried up to ``handle`` as its answer."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _envelope(status: int, code: str, message: str, results: Any = None) -> HttpResponse:
    # gowa's ResponseData: {code, message, results}; its Status is json:"-" (§3.6).
    body = msgspec.json.encode(_Envelope(code=code, message=message, results=results))
    return HttpResponse(status=status, headers=_JSON, body=body)


def _refuse(status: int, code: str, message: str, results: Any = None) -> _Refusal:
    return _Refusal(_envelope(status, code, message, results))


def _invalid(message: str) -> _Refusal:
    """pkgError.ValidationError: 400 VALIDATION_ERROR (G4, G8)."""
    return _refuse(400, "VALIDATION_ERROR", message)


def _panic(message: str) -> _Refusal:
    """Any other error reaching the recovery middleware: 500 (G9)."""
    return _refuse(500, "INTERNAL_SERVER_ERROR", message)


def _fiber_text(status: int, text: str) -> HttpResponse:
    # Fiber's default error handler: the error text as text/plain.
    return HttpResponse(status=status, headers=_TEXT, body=text.encode())


def _go_html_escape(text: str) -> str:
    # Go's html.EscapeString, which Fiber applies to the path in "Cannot POST /x".
    for raw, escaped in (("&", "&amp;"), ("'", "&#39;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(raw, escaped)
    return text.replace('"', "&#34;")


def _si_bytes(size: int) -> str:
    """go-humanize's ``Bytes`` (SI units), as gowa's size messages print it."""
    if size < 10:
        return f"{size} B"
    exponent = math.floor(math.log(size, 1000))
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    unit = ("B", "kB", "MB", "GB", "TB")[exponent]
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_type_error(struct: str, field: str, value: Any, want: str) -> _Refusal:
    # encoding/json's UnmarshalTypeError, panicked by the handler: a 500 (G3, G9).
    return _panic(
        f"json: cannot unmarshal {_go_type(value)} into Go struct field "
        f"{struct}.{field} of type {want}"
    )


class _Form:
    """A decoded request body: text fields by name (every value) and file parts."""

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {}
        self.files: dict[str, tuple[bytes, str, str | None]] = {}
        self.is_json = False

    def last(self, name: str) -> Any:
        # gorilla/schema keeps the last value of a repeated scalar field.
        found = self.values.get(name)
        return found[-1] if found else None


class GowaSandbox(GatewaySandbox):
    """gowa's send API, answered from memory.

    Args:
        outbox: where accepted messages go.
        basic_auth: the (user, password) ``APP_BASIC_AUTH`` pair it requires,
            or None to run open, as gowa does without ``APP_BASIC_AUTH``.
        device_id: the id of its WhatsApp device; its JID is
            ``15550000000@s.whatsapp.net``, and either names it.
        other_devices: more registered device ids. With any, a request must
            name its device (``DEVICE_ID_REQUIRED`` otherwise), as on a
            multi-device gowa.
        seed: seeds the message ids, for repeatable runs.
        clock: the time source (seconds since the epoch).
    """

    provider = "gowa"

    def __init__(
        self,
        outbox: Outbox,
        *,
        basic_auth: tuple[str, str] | None = ("sandbox", "sandbox-pass"),
        device_id: str = "sandbox-device",
        other_devices: Sequence[str] = (),
        seed: int | str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(outbox, seed=seed, clock=clock)
        self.basic_auth = basic_auth
        self.device_id = device_id
        self.other_devices = tuple(other_devices)
        self._devices = {device_id: _SANDBOX_JID, **{d: "" for d in self.other_devices}}

    def jid_of(self, device_id: str) -> str:
        """The WhatsApp JID of a registered device (webhooks' ``device_id``, docs/webhooks.md §1).

        Devices other than the default one have no account of their own in
        the sandbox: they report the default device's JID.
        """
        return self._devices.get(device_id) or _SANDBOX_JID

    def credentials(self, base_url: str) -> dict[str, Any]:
        """Client settings for this sandbox served at ``base_url``."""
        settings: dict[str, Any] = {"base_url": base_url, "device_id": self.device_id}
        if self.basic_auth is not None:
            settings["username"], settings["password"] = self.basic_auth
        return settings

    def error(self, status: int, message: str, code: str | None = None) -> HttpResponse:
        """gowa's error envelope: ``{code, message, results: null}`` (§3.6)."""
        fallback = "INTERNAL_SERVER_ERROR" if status >= 500 else "INVALID_REQUEST"
        return _envelope(status, code or _CODE_FOR_STATUS.get(status, fallback), message)

    def auth_error(self) -> HttpResponse:
        """Fiber's Basic-auth answer: plain ``Unauthorized`` (§3.1), not gowa's envelope."""
        return HttpResponse(
            status=401,
            headers={**_TEXT, "www-authenticate": 'Basic realm="Restricted"'},
            body=b"Unauthorized",
        )

    # ------------------------------------------------------------------
    # Middleware, in gowa's order (§3.1, G10 rest.go)
    # ------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request to ``/send/message`` or ``/send/image``."""
        headers: dict[str, str] = {}
        for name, value in request.revealed_headers().items():
            headers.setdefault(name.lower(), value)
        if self.basic_auth is not None and not self._authorized(headers.get("authorization")):
            return self.auth_error()
        device = self._device(headers, request.revealed_query())
        if isinstance(device, HttpResponse):
            return device
        path = request.url.split("?", 1)[0]
        # Fiber routes case-insensitively and ignores a trailing slash by default.
        route = path.lower().rstrip("/")
        if route not in (_TEXT_PATH, _IMAGE_PATH):
            return _fiber_text(404, f"Cannot {request.method} {_go_html_escape(path)}")
        if request.method != "POST":
            return _fiber_text(405, "Method Not Allowed")
        try:
            form = self._body(headers.get("content-type", ""), body_bytes(request), route)
            if route == _TEXT_PATH:
                return self._text(form, device)
            return self._image(form, device)
        except _Refusal as refusal:
            return refusal.response

    def media_authorized(self, request: HttpRequest) -> bool:
        """gowa serves ``/statics`` behind the same Basic auth as its API (§1 (b))."""
        if self.basic_auth is None:
            return True
        headers = {k.lower(): v for k, v in request.revealed_headers().items()}
        return self._authorized(headers.get("authorization"))

    def _authorized(self, header: str | None) -> bool:
        # Fiber's basicauth: "Basic " (any case), standard base64, user:pass
        # split at the first colon; gowa compares in constant time (§3.1).
        assert self.basic_auth is not None
        if header is None or len(header) <= 6 or header[:6].lower() != "basic ":
            return False
        try:
            raw = b64decode(header[6:].encode("ascii"), validate=True)
        except (BinasciiError, UnicodeEncodeError):
            return False
        user, colon, password = raw.partition(b":")
        want_user, want_password = (part.encode() for part in self.basic_auth)
        if not colon or user != want_user:
            return False
        return hmac.compare_digest(password, want_password)

    def _device(self, headers: dict[str, str], query: dict[str, str]) -> str | HttpResponse:
        # G9 device.go: the header (URL-decoded), else ?device_id=; by id or JID.
        wanted = unquote(headers.get("x-device-id", "")).strip()
        if not wanted:
            wanted = query.get("device_id", "").strip()
        if not wanted:
            if len(self._devices) == 1:
                return self.device_id
            return _envelope(
                400,
                "DEVICE_ID_REQUIRED",
                "device_id is required via X-Device-Id header or device_id query",
            )
        for device_id, jid in self._devices.items():
            if wanted in (device_id, jid):
                return device_id
        return _envelope(
            404,
            "DEVICE_NOT_FOUND",
            "device not found; create a device first from /api/devices or provide a valid "
            "X-Device-Id",
            {"device_id": wanted},
        )

    # ------------------------------------------------------------------
    # Body binding (Fiber's BodyParser, G3)
    # ------------------------------------------------------------------

    def _body(self, content_type: str, body: bytes, route: str) -> _Form:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type.endswith("json"):
            return self._json(body, route)
        if media_type.startswith("multipart/form-data"):
            return _multipart(content_type, body)
        if media_type.startswith("application/x-www-form-urlencoded"):
            form = _Form()
            for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                form.values.setdefault(name, []).append(value)
            return form
        # Fiber's ErrUnprocessableEntity, panicked by the handler: a 500 (G3, G9).
        raise _panic("Unprocessable Entity")

    def _json(self, body: bytes, route: str) -> _Form:
        if not body.strip():
            raise _panic("unexpected end of JSON input")
        try:
            parsed = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise _panic(f"invalid character in JSON body: {exc}") from None
        struct = "MessageRequest" if route == _TEXT_PATH else "ImageRequest"
        if parsed is None:  # encoding/json leaves the struct as it was
            parsed = {}
        if not isinstance(parsed, dict):
            raise _panic(
                f"json: cannot unmarshal {_go_type(parsed)} into Go value of type send.{struct}"
            )
        form = _Form()
        form.is_json = True
        if route == _TEXT_PATH:
            # Decoded with the adapter's own wire struct, in the other direction;
            # a JSON null leaves a Go field at its zero value.
            present = {k: v for k, v in parsed.items() if v is not None}
            present.setdefault("phone", "")
            present.setdefault("message", "")
            try:
                wire = msgspec.convert(present, type=_TextBody)
            except msgspec.ValidationError as exc:
                field = _bad_field(str(exc))
                want = "[]string" if field == "mentions" else "string"
                raise _json_type_error(struct, field, present.get(field), want) from None
            form.values = {"phone": [wire.phone], "message": [wire.message]}
            if wire.reply_message_id is not None:
                form.values["reply_message_id"] = [wire.reply_message_id]
            if wire.mentions:
                form.values["mentions"] = list(wire.mentions)
            for name in ("is_forwarded", "duration"):
                if present.get(name) is not None:
                    form.values[name] = [present[name]]
            return form
        for name, value in parsed.items():
            if value is not None:
                form.values[name] = [value]
        return form

    # ------------------------------------------------------------------
    # Sends (G5 SendText / SendImage)
    # ------------------------------------------------------------------

    def _text(self, form: _Form, device: str) -> HttpResponse:
        struct = "MessageRequest"
        phone = _sanitize_phone(_string(form, "phone", struct))
        message = _string(form, "message", struct)
        reply = _string(form, "reply_message_id", struct) or None
        is_forwarded = _bool(form, "is_forwarded", struct)
        duration = _int(form, "duration", struct)
        mentions = [str(m) for m in form.values.get("mentions", [])]
        # ValidateSendMessage (G4): ozzo-validation lists blank fields sorted by name.
        blank = [
            f"{n}: cannot be blank" for n, v in (("message", message), ("phone", phone)) if not v
        ]
        if blank:
            raise _invalid("; ".join(blank) + ".")
        _check_phone(phone)
        _check_duration(duration)
        for mention in mentions:
            if mention == "@everyone":
                continue
            try:
                _check_phone(mention)
            except _Refusal:
                raise _invalid(
                    f"mention {mention}: phone number must be in international format"
                ) from None
        chat_id = _recipient(phone)
        extra: dict[str, Any] = {"device_id": device}
        if mentions:
            extra["mentions"] = mentions
        if is_forwarded:
            extra["is_forwarded"] = True
        if duration is not None:
            extra["duration"] = duration
        return self._accept(phone, chat_id, "text", text=message, reply_to=reply, extra=extra)

    def _image(self, form: _Form, device: str) -> HttpResponse:
        struct = "ImageRequest"
        phone = _sanitize_phone(_string(form, "phone", struct))
        caption = _string(form, "caption", struct)
        reply = _string(form, "reply_message_id", struct) or None
        view_once = _bool(form, "view_once", struct)
        # The handler presets Compress = true before binding (§3.3, G3).
        compress = _bool(form, "compress", struct, default=True)
        hd = _bool(form, "hd", struct)
        is_forwarded = _bool(form, "is_forwarded", struct)
        duration = _int(form, "duration", struct)
        image_url = _string(form, "image_url", struct)
        upload = form.files.get("image")
        # ValidateSendImage (G4).
        if not phone:
            raise _invalid("phone: cannot be blank.")
        _check_phone(phone)
        if upload is None and not image_url:
            raise _invalid("either Image or ImageURL must be provided")
        if upload is not None and upload[1] not in _UPLOAD_TYPES:
            raise _invalid("your image is not allowed. please use jpg/jpeg/png")
        if image_url and not _is_url(image_url):
            raise _invalid("ImageURL must be a valid URL")
        _check_duration(duration)
        if image_url:
            # Both given: the URL wins and the upload is ignored (§3.3, G5).
            upload = None
        chat_id = _recipient(phone)
        fields: dict[str, Any] = {}
        if upload is None:
            fields.update(image_url=image_url, mimetype=self._url_mimetype(image_url))
        else:
            data, declared, filename = upload
            fields.update(
                image_bytes=data, mimetype=self._upload_mimetype(data, declared), filename=filename
            )
        extra: dict[str, Any] = {"device_id": device, "view_once": view_once, "compress": compress}
        if hd:
            extra["hd"] = True
        if is_forwarded:
            extra["is_forwarded"] = True
        if duration is not None:
            extra["duration"] = duration
        return self._accept(
            phone, chat_id, "image", caption=caption or None, reply_to=reply, extra=extra, **fields
        )

    @staticmethod
    def _url_mimetype(url: str) -> str | None:
        # DownloadImageFromURL takes the name after the last "/" up to the first
        # "?" and refuses other extensions, with a 500 (§3.3, G7). The sandbox
        # does not fetch the URL; it records it.
        name = url.rsplit("/", 1)[-1].split("?", 1)[0]
        dot = name.rfind(".")
        extension = name[dot:].lower() if dot >= 0 else ""
        if extension not in _URL_EXTENSIONS:
            raise _panic(
                "failed to download image from URL invalid image extension: "
                f"{extension or '(none)'}; use .jpg, .jpeg, .png or .webp"
            )
        return guess_from_name(name)

    @staticmethod
    def _upload_mimetype(data: bytes, declared: str) -> str:
        limit = GowaAdapter.capabilities.max_media_bytes or 0
        if len(data) > limit:
            # "Maximum file size: 16MB" (seed 001), in gowa's size-error wording (G4).
            size = _si_bytes(limit)
            raise _invalid(
                f"max image upload is {size}, please upload in cloud and send via text if "
                f"your file is higher than {size}"
            )
        found = sniff(data[:16])
        if found not in GowaAdapter.capabilities.image_types:
            # gowa decodes the upload to resize it (compress is on by default);
            # bytes that are no JPEG or PNG fail there, with a 500 (G5).
            raise _panic("failed to open image: image: unknown format")
        if found != _UPLOAD_TYPES[declared]:
            # Stricter than gowa, which decodes whatever it gets: a part labelled
            # with another type than its bytes is a client bug worth showing.
            raise _invalid(f"your image is {found}, not the {declared} its part declares")
        return found

    def _accept(self, phone: str, chat_id: str, kind: str, **fields: Any) -> HttpResponse:
        # whatsmeow's GenerateMessageID: "3EB0" and 18 upper-case hex digits (§3.5).
        message_id = self.hex_id(18)
        stored = self.store(
            kind="image" if kind == "image" else "text",
            chat_id=chat_id,
            message_id=message_id,
            **fields,
        )
        # "Message sent to <phone as given> (server timestamp: <Go time.String()>)"
        # (§3.5, G5); WhatsApp's timestamps are whole seconds, printed in UTC here.
        when = time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(int(stored.received_at)))
        status = f"Message sent to {phone} (server timestamp: {when})"
        return _envelope(200, "SUCCESS", status, {"message_id": message_id, "status": status})


# ----------------------------------------------------------------------
# Field binding and validation helpers
# ----------------------------------------------------------------------


def _multipart(content_type: str, body: bytes) -> _Form:
    """Parse multipart/form-data for real, with the stdlib email parser."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    boundary = parsed.get_boundary()
    if not parsed.is_multipart() or boundary is None or parsed.defects:
        # Go's mime/multipart failing inside Fiber's BodyParser: a 500 (G3, G9).
        raise _panic("request Content-Type has bad boundary or is not multipart/form-data")
    form = _Form()
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            # c.FormFile returns the first file part of that name; Go reads the
            # part's Content-Type as sent (§3.3: "the part's Content-Type").
            declared = str(part.get("content-type", "application/octet-stream"))
            form.files.setdefault(name, (data, declared, filename))
        else:
            form.values.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return form


def _bad_field(message: str) -> str:
    found = re.search(r"\$\.(\w+)", message)
    return found.group(1) if found else "phone"


def _string(form: _Form, name: str, struct: str) -> str:
    value = form.last(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _json_type_error(struct, name, value, "string")
    return value


def _bool(form: _Form, name: str, struct: str, *, default: bool = False) -> bool:
    value = form.last(name)
    if value is None:
        return default
    if form.is_json:
        if not isinstance(value, bool):
            raise _json_type_error(struct, name, value, "bool")
        return value
    # gorilla/schema: "on" or strconv.ParseBool; Fiber zeroes empty values.
    found = _GO_BOOL.get(str(value))
    if found is None:
        raise _panic(f'failed to decode: schema: error converting value for "{name}"')
    return found


def _int(form: _Form, name: str, struct: str) -> int | None:
    value = form.last(name)
    if value is None:
        return None
    if form.is_json:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _json_type_error(struct, name, value, "int")
        return value
    if value == "":
        return None
    try:
        return int(str(value), 10)
    except ValueError:
        raise _panic(f'failed to decode: schema: error converting value for "{name}"') from None


def _sanitize_phone(phone: str) -> str:
    """utils.SanitizePhone (§3.4): a bare value gets a user or group suffix."""
    if phone and "@" not in phone:
        return phone + ("@s.whatsapp.net" if len(phone) <= _MAX_PHONE_LENGTH else "@g.us")
    return phone


def _check_phone(phone: str) -> None:
    """validatePhoneNumber (§3.4, G4): not empty, international (no leading 0)."""
    number = phone.strip()
    number = number[1:] if number.startswith("+") else number
    if not number:
        raise _invalid("phone number cannot be empty")
    if number.startswith("0"):
        raise _invalid(
            "phone number must be in international format (should not start with 0). "
            "For Indonesian numbers, use 62xxx format instead of 08xxx"
        )


def _check_duration(duration: int | None) -> None:
    if duration is not None and duration not in _DURATIONS:
        raise _invalid(
            "duration must be one of: 0 (no expiry), 86400 (24h), 604800 (7d), 7776000 (90d)"
        )


def _is_url(value: str) -> bool:
    # ozzo's is.URL, narrowed to what DownloadImageFromURL can fetch.
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and " " not in value


def _recipient(phone: str) -> str:
    """ValidateJidWithLogin and whatsmeow's send (§3.4, G6): the chat id, or a refusal."""
    jid = phone[1:] if phone.startswith("+") else phone  # ParseJID strips a leading "+"
    user, _, rest = jid.partition("@")
    server = rest.split("@", 1)[0]
    if not user:
        raise _panic(f"invalid JID {jid}: no server specified")
    if server == "s.whatsapp.net":
        # WHATSAPP_ACCOUNT_VALIDATION (on by default): IsOnWhatsApp (§3.4).
        if not _USER.fullmatch(user):
            raise _refuse(400, "INVALID_JID", f"Phone {phone} is not on whatsapp")
    elif server == "g.us":
        if not _GROUP.fullmatch(user):
            raise _panic("failed to get group members: that group does not exist")
    elif server in ("newsletter", "lid"):
        if not _DIGITS.fullmatch(user):
            raise _panic(f"failed to send message: invalid JID {jid}")
    else:
        # gowa sends to users, groups, channels and @lid ids only (§3.4).
        raise _panic(f"can't send message to unknown server {server}")
    return f"{user}@{server}"
