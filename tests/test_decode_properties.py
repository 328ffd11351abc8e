"""Property-based tests: whatever a gateway answers, every decoder stays in its contract.

Each registered adapter (``wamsg.available()``) gets, through hypothesis:

- random bytes with random statuses (100-599) and random headers, garbage
  ``Retry-After`` and ``Content-Type`` values included;
- random JSON documents: ``null``, bools, ints up to thousands of digits,
  large floats, unicode text (no lone surrogates), lists and objects whose
  keys and strings are often the gateways' own (taken from the response
  goldens in ``tests/data``), and timestamp-shaped strings;
- the response goldens' own bodies (see tests/golden.py), mutated: leaves
  and keys replaced, keys dropped or renamed, values retyped or wrapped, so
  that the decoders' deeper paths run, not only their top-level refusal;
- time-like values of every shape and range (ISO 8601 and Go times at the
  ends of the calendar, epoch seconds and milliseconds, protobuf Longs) put
  into the goldens' fields, their time fields most often;
- JSON objects nested tens to tens of thousands of levels deep;
- the smallest bodies these once found escaping a decoder (:data:`FOUND`),
  on every adapter, so that they stay covered whatever hypothesis draws.

The contract checked on every answer: ``decode`` returns a
:class:`~wamsg.SendResult` with well-typed fields (only after a 2xx), or
raises a :class:`~wamsg.ProviderError` whose ``status_code`` is the status
given and whose ``outcome`` is an :class:`~wamsg.Outcome`; nothing else
escapes (no ``KeyError``, ``TypeError``, msgspec error, ``OverflowError``,
``RecursionError`` ...). After a 2xx the outcome is ``not_sent`` only when the
body is a JSON object that says so (an error code or an error status in it).
No ``str``/``repr`` of an error, and no result field but the ids the gateway
chose, holds the sample credentials, even when the body echoes them.

Runs are deterministic (``derandomize=True``), keep no example database, and
leave Hypothesis's caches in the system's temporary directory, not the checkout.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from golden import body_of, build_message, golden_files, load_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import wamsg
from wamsg import HttpResponse, Outcome, ProviderError, SendResult, Status, WamsgError
from wamsg.providers import Adapter

# Hypothesis caches what it learns (source constants, Unicode tables) under
# ./.hypothesis even without an example database: keep it out of the checkout.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "wamsg-hypothesis")

PROVIDERS = wamsg.available()

#: Examples per property and provider: with every decoder passing, the whole
#: file takes about 12 s on a two-core machine.
_BYTES = 150
_JSON = 100
_MUTATED = 120
_TIMES = 150
_DEEP = 30


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        # One bug shrunk per run: a failing run stays short.
        report_multiple_bugs=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --------------------------------------------------------------------------
# Sample adapters and what they must never show
# --------------------------------------------------------------------------

_SECRET_SETTING = re.compile(r"token|key|password|secret", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    """One provider's adapter, built from a request golden, and its secret values."""

    adapter: Adapter
    secrets: tuple[str, ...]


@cache
def sample(provider: str) -> Sample:
    """The adapter of ``provider`` built with the request golden richest in credentials.

    Its secrets are the credential-like settings (``*token*``, ``*key*``,
    ``*password*``) and every :class:`~wamsg.Secret` the adapter puts on the
    wire for that golden's message (e.g. a whole ``Basic …`` header).
    """

    def richness(path: Path) -> tuple[int, int]:
        found = load_golden(path)["settings"]
        return sum(bool(_SECRET_SETTING.search(k)) for k in found), len(found)

    paths = golden_files(provider, "request")
    golden = load_golden(max(paths, key=richness))  # the first of the richest
    adapter = wamsg.create_adapter(provider, **golden["settings"])
    values = {
        str(value)
        for key, value in golden["settings"].items()
        if _SECRET_SETTING.search(key) and value
    }
    request = adapter.encode(build_message(golden["message"]))
    values |= {secret.reveal() for secret in request.secrets()}
    return Sample(adapter=adapter, secrets=tuple(sorted(v for v in values if len(v) >= 4)))


def response_goldens(provider: str) -> list[dict[str, Any]]:
    """Every response golden of ``provider``."""
    return [load_golden(path) for path in golden_files(provider, "response")]


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@cache
def vocabulary() -> tuple[str, ...]:
    """Every key and string of every response golden body, of every provider.

    Random documents built from these hit the fields and codes the decoders
    look for (``id``, ``_serialized``, ``code``, ``SUCCESS``, error codes ...).
    """
    words: set[str] = set()
    for provider in PROVIDERS:
        for golden in response_goldens(provider):
            words.update(w for w in _walk(golden.get("body")) if isinstance(w, str))
    return tuple(sorted(words))


@cache
def golden_bodies(provider: str) -> tuple[tuple[int, Any], ...]:
    """(status, JSON body) of every response golden of ``provider`` with a JSON body."""
    return tuple(
        (golden["status"], golden["body"])
        for golden in response_goldens(provider)
        if "body" in golden
    )


@cache
def golden_raw(provider: str) -> tuple[bytes, ...]:
    """Every response golden body of ``provider`` as bytes (text bodies included)."""
    return tuple(body_of(golden) for golden in response_goldens(provider))


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

_HEADER_NAMES = ["Retry-After", "retry-after", "RETRY-AFTER", "Content-Type", "content-type"]


def _offsets() -> st.SearchStrategy[timezone]:
    limit = timedelta(hours=23, minutes=59)
    return st.builds(timezone, st.timedeltas(min_value=-limit, max_value=limit))


def _datetimes(zones: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[datetime]:
    """Any datetime in ``zones`` (default: naive, UTC or an offset), often at
    the very ends of the calendar, there with an offset (which may overflow)."""
    edge_zones = _offsets() if zones is None else zones
    any_zones = st.none() | st.just(UTC) | _offsets() if zones is None else zones
    return st.one_of(
        st.datetimes(timezones=any_zones),
        st.datetimes(max_value=datetime(1, 1, 1, 12), timezones=edge_zones),
        st.datetimes(min_value=datetime(9999, 12, 31, 12), timezones=edge_zones),
    )


def _go_time(when: datetime) -> str:
    offset = when.utcoffset() or timedelta()
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d} "
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}.{when.microsecond:06d} "
        f"{sign}{hours:02d}{mins:02d} {when.tzname() or 'UTC'}"
    )


@cache
def timestamp_texts() -> st.SearchStrategy[str]:
    """Strings shaped like the gateways' times: ISO 8601, Go's, epoch digits."""
    return st.one_of(
        _datetimes().map(datetime.isoformat),
        _datetimes().map(lambda d: d.isoformat().replace("+00:00", "Z")),
        _datetimes(_offsets()).map(_go_time),
        st.builds(
            lambda chat, when: f"Message sent to {chat} (server timestamp: {_go_time(when)})",
            st.sampled_from(["628123456789@s.whatsapp.net", "x@y", "@"]),
            _datetimes(_offsets()),
        ),
        st.integers(min_value=-(10**25), max_value=10**25).map(str),
    )


@cache
def timestamp_values() -> st.SearchStrategy[Any]:
    """Any JSON a gateway may put where a time goes: text, epoch s or ms, protobuf Longs."""
    ints = st.one_of(
        st.integers(),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.sampled_from([0, 1, -1, 10**11, 10**11 + 1, 10**12, 253402300799, 253402300800]),
        st.integers(min_value=0, max_value=4200).map(lambda n: 10**n),
    )
    return st.one_of(
        timestamp_texts(),
        ints,
        st.floats(allow_nan=False, allow_infinity=False),
        st.fixed_dictionaries({"low": ints, "high": ints, "unsigned": st.booleans()}),
        st.fixed_dictionaries({}, optional={"low": ints | st.text(), "high": ints | st.none()}),
    )


@cache
def retry_after_values() -> st.SearchStrategy[str]:
    """``Retry-After`` values: delay-seconds, HTTP dates, and garbage."""
    return st.one_of(
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats().map(str),
        st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "0x10", "٣", "1_000", "+5"]),
        st.datetimes(timezones=st.just(UTC) | _offsets()).map(format_datetime),
        st.datetimes().map(lambda d: format_datetime(d, usegmt=False)),
        st.text(max_size=40),
        st.text(alphabet="0123456789 ,:-+GMTMonJan", max_size=40),
    )


@cache
def content_types() -> st.SearchStrategy[str]:
    """``Content-Type`` values, real and broken."""
    return st.one_of(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=UTF-8",
                "application/json; charset=latin-1",
                "text/html",
                "text/plain; charset=utf-16",
                "application/xml",
                "application/octet-stream",
                "multipart/form-data; boundary=",
                ";;;",
            ]
        ),
        st.text(max_size=60),
    )


@cache
def headers() -> st.SearchStrategy[dict[str, str]]:
    """Random response headers, often with ``Retry-After`` and ``Content-Type``."""
    special = st.one_of(
        st.tuples(st.sampled_from(_HEADER_NAMES[:3]), retry_after_values()),
        st.tuples(st.sampled_from(_HEADER_NAMES[3:]), content_types()),
        st.tuples(st.text(max_size=20), st.text(max_size=40)),
    )
    return st.lists(special, max_size=4).map(dict)


@cache
def statuses() -> st.SearchStrategy[int]:
    """Any status 100-599, 2xx often (where the decoders read the most)."""
    return st.one_of(
        st.integers(min_value=100, max_value=599),
        st.integers(min_value=200, max_value=299),
        st.sampled_from([200, 201, 202, 204, 400, 401, 404, 408, 422, 429, 500, 502, 503, 504]),
    )


@cache
def texts(provider: str) -> st.SearchStrategy[str]:
    """Unicode text (no lone surrogates), gateway words, timestamps and the secrets."""
    words = vocabulary() + sample(provider).secrets
    return st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=30),
        st.sampled_from(words),
        timestamp_texts(),
        st.builds(
            lambda a, s, b: a + s + b,
            st.text(max_size=5),
            st.sampled_from(sample(provider).secrets or ("",)),
            st.text(max_size=5),
        ),
    )


@cache
def json_scalars(provider: str) -> st.SearchStrategy[Any]:
    """JSON leaves: null, bools, ints (huge ones too), finite floats, text."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([-1, 0, 1, 2, 3, 4, 5, 6, 400, 429, 500, 503, 10**11 + 1, 2**63, 2**64]),
        st.integers(min_value=0, max_value=4200).map(lambda n: 10**n),
        st.integers(min_value=0, max_value=4200).map(lambda n: -(10**n)),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e11, 1.5e12]),
        texts(provider),
    )


@cache
def json_values(provider: str) -> st.SearchStrategy[Any]:
    """Any JSON document, keys often the gateways' own."""
    keys = st.one_of(st.sampled_from(vocabulary()), st.text(max_size=10))
    return st.recursive(
        json_scalars(provider),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=5),
        ),
        max_leaves=25,
    )


def _encode(document: Any, ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8")


JsonPath = tuple[str | int, ...]


def _paths(document: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _paths(value, (*prefix, index))


def _get(document: Any, path: JsonPath) -> Any:
    for step in path:
        document = document[step]
    return document


def _retyped(value: Any) -> list[Any]:
    """Other JSON types carrying the same information, as a confused gateway sends it."""
    options: list[Any] = [None, [value], {"_serialized": value}, {}, [], "", True, False, 0, -1]
    if isinstance(value, str):
        options += [value.upper(), value.lower(), value[: len(value) // 2]]
        if value.isdigit():
            options.append(int(value))
    elif isinstance(value, bool):
        options += [str(value).lower(), int(value)]
    elif isinstance(value, float) or (isinstance(value, int) and abs(value) < 10**300):
        options += [str(value), float(value), -value, value * 1000]
    elif isinstance(value, int):
        options += [str(value), -value]
    elif isinstance(value, dict):
        options += [list(value.values()), list(value)]
    elif isinstance(value, list):
        options += [dict(enumerate(map(str, value))), *value[:1]]
    return options


_OPERATIONS = ("replace", "drop", "retype", "rename", "add")


@st.composite
def mutated_goldens(draw: st.DrawFn, provider: str) -> tuple[int, bytes]:
    """(status, body): a response golden's JSON body with one to five mutations.

    The status is the golden's own half of the time, any other otherwise.
    """
    status, original = draw(st.sampled_from(golden_bodies(provider)))
    document = json.loads(json.dumps(original))  # a deep copy
    values = json_values(provider)
    keys = st.one_of(st.sampled_from(vocabulary()), st.text(max_size=10))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        path = draw(st.sampled_from(list(_paths(document))))
        operation = draw(st.sampled_from(_OPERATIONS))
        node = _get(document, path)
        if operation == "replace":
            new: Any = draw(values)
        elif operation == "retype":
            new = draw(st.sampled_from(_retyped(node)))
        elif operation == "add" and isinstance(node, dict):
            node[draw(keys)] = draw(values)
            continue
        elif operation == "add" and isinstance(node, list):
            node.insert(draw(st.integers(0, len(node))), draw(values))
            continue
        elif operation in ("drop", "rename") and path:
            parent = _get(document, path[:-1])
            item = parent.pop(path[-1])
            if operation == "rename" and isinstance(parent, dict):
                parent[draw(keys)] = item
            continue
        else:
            new = draw(values)
        if path:
            _get(document, path[:-1])[path[-1]] = new
        else:
            document = new
    if draw(st.booleans()):
        status = draw(statuses())
    return status, _encode(document, draw(st.booleans()))


@cache
def raw_bodies(provider: str) -> st.SearchStrategy[bytes]:
    """Random bytes, golden bodies cut or spliced, and bytes around a secret."""
    secrets = [s.encode() for s in sample(provider).secrets] or [b""]
    return st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda body, start, stop: body[start:stop],
            st.sampled_from(golden_raw(provider)),
            st.integers(min_value=0, max_value=200),
            st.integers(min_value=0, max_value=2000),
        ),
        st.builds(
            lambda body, at, junk: body[:at] + junk + body[at:],
            st.sampled_from(golden_raw(provider)),
            st.integers(min_value=0, max_value=400),
            st.binary(min_size=1, max_size=20),
        ),
        st.builds(
            lambda a, s, b: a + s + b,
            st.binary(max_size=50),
            st.sampled_from(secrets),
            st.binary(max_size=50),
        ),
        broken_strings(provider),
    )


@st.composite
def broken_strings(draw: st.DrawFn, provider: str) -> bytes:
    """A golden body with bytes that are not UTF-8 (or escapes of lone surrogates,
    controls) right after one of its quotes: inside a JSON string or key."""
    body = draw(st.sampled_from(golden_raw(provider)))
    quotes = [i for i, byte in enumerate(body) if byte == ord('"')]
    junk = draw(
        st.binary(min_size=1, max_size=4).filter(lambda b: b'"' not in b)
        | st.sampled_from([b"\x80", b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x00", b"\\ud800"])
    )
    if not quotes:
        return junk + body
    at = draw(st.sampled_from(quotes)) + 1
    return body[:at] + junk + body[at:]


@st.composite
def deep_documents(draw: st.DrawFn) -> bytes:
    """A JSON object with one member nested tens to thousands of levels deep."""
    # Well below or well above the interpreter's recursion limit (1000), so
    # that whether a depth fails does not hang on the caller's stack depth.
    depth = draw(st.integers(min_value=50, max_value=500) | st.integers(2000, 20000))
    key = json.dumps(draw(st.sampled_from(vocabulary()))).encode()
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = opener * depth + (b"1" if opener != b"[" else b"") + closer * depth
    return b"{" + key + b":" + inner + b"}"


@st.composite
def golden_with_new_leaf(draw: st.DrawFn, provider: str) -> tuple[int, bytes]:
    """(status, body): a response golden with one member set to a time-like value.

    Half of the time the golden is a 2xx one (where times are read), and half
    of the time the member is one whose name says it is a time (``timestamp``,
    ``messageTimestamp`` ...), when the golden has one.
    """
    bodies = golden_bodies(provider)
    accepted = [case for case in bodies if 200 <= case[0] < 300]
    status, original = draw(st.sampled_from(accepted or bodies) | st.sampled_from(bodies))
    document = json.loads(json.dumps(original))
    paths = [path for path in _paths(document) if path] or [()]
    timely = [path for path in paths if "time" in str(path[-1]).lower()]
    path = draw(st.sampled_from(timely or paths) | st.sampled_from(paths))
    value = draw(timestamp_values())
    if path:
        _get(document, path[:-1])[path[-1]] = value
    else:
        document = value
    return status, _encode(document, ascii_only=False)


# --------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------


def _parsed(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None


def _says_not_sent(body: bytes, error: ProviderError) -> bool:
    """Whether a 2xx body is a JSON object that names the failure itself.

    Either the error code the adapter reports is one of the body's strings
    (``{"error_code": "DEVICE_NOT_READY"}``), or the body states an error
    status (``{"statusCode": 503}``, ``{"data": {"status": 429}}``).
    """
    document = _parsed(body)
    if not isinstance(document, dict):
        return False
    found = list(_walk(document))
    if error.error_code is not None and error.error_code in found:
        return True
    return any(isinstance(v, int) and not isinstance(v, bool) and v >= 400 for v in found)


def _shown(value: object) -> list[str]:
    return [str(value), repr(value)]


def check(sample: Sample, response: HttpResponse) -> None:
    """Decode ``response`` and check the adapter's contract on what comes back."""
    adapter = sample.adapter
    try:
        result = adapter.decode(response)
    except WamsgError as error:
        check_error(sample, response, error)
    else:
        check_result(sample, response, result)


def check_result(sample: Sample, response: HttpResponse, result: SendResult) -> None:
    """A result: only after a 2xx, well typed, no secret but in the gateway's own ids."""
    assert 200 <= response.status < 300, f"HTTP {response.status} gave {result!r}"
    assert isinstance(result, SendResult)
    assert result.provider == sample.adapter.name
    assert result.message_id is None or isinstance(result.message_id, str)
    assert result.short_id is None or isinstance(result.short_id, str)
    assert result.chat_id is None or isinstance(result.chat_id, str)
    assert isinstance(result.status, Status)
    if result.timestamp is not None:
        assert isinstance(result.timestamp, datetime)
        assert result.timestamp.tzinfo is not None
        assert result.timestamp.utcoffset() is not None
    assert isinstance(result.attempts, tuple)
    assert result.raw == response.body
    ids = " ".join(filter(None, (result.message_id, result.short_id, result.chat_id)))
    for text in _shown(result):
        assert isinstance(text, str)
        for secret in sample.secrets:
            assert secret not in text or secret in ids, f"{result!r} shows a secret"


def check_error(sample: Sample, response: HttpResponse, error: WamsgError) -> None:
    """An error: a ProviderError for this status, well typed, with no secret in it."""
    assert isinstance(error, ProviderError), f"{type(error).__name__} is not a ProviderError"
    assert isinstance(error.outcome, Outcome)
    assert error.status_code == response.status
    assert error.provider == sample.adapter.name
    assert isinstance(error.retryable, bool)
    assert error.error_code is None or isinstance(error.error_code, str)
    assert error.gateway_message is None or isinstance(error.gateway_message, str)
    assert isinstance(error.body_excerpt, str)
    if error.retry_after is not None:
        assert math.isfinite(error.retry_after)
        assert error.retry_after >= 0
    if 200 <= response.status < 300 and error.outcome is Outcome.NOT_SENT:
        assert _says_not_sent(response.body, error), f"not_sent after a 2xx: {error!r}"
    shown = [
        *_shown(error),
        error.message,
        error.body_excerpt,
        error.gateway_message or "",
        error.error_code or "",
        *map(str, error.args),
    ]
    for text in shown:
        assert isinstance(text, str)
        for secret in sample.secrets:
            assert secret not in text, f"{type(error).__name__} shows a secret: {text[:200]!r}"


# --------------------------------------------------------------------------
# The properties
# --------------------------------------------------------------------------

#: The smallest bodies the properties below found escaping a decoder, kept so
#: that every adapter and status meets them whatever hypothesis generates.
FOUND = [
    # Invalid UTF-8 inside a JSON string: msgspec raises UnicodeDecodeError
    # (a ValueError, not a msgspec.DecodeError).
    pytest.param(b'"\x80"', id="bad-utf8-string"),
    pytest.param(b'{"code": "\x80"}', id="bad-utf8-code"),
    pytest.param(b'{"id": "\xff"}', id="bad-utf8-id"),
    pytest.param(b'{"message_id": "\x80", "success": true}', id="bad-utf8-message-id"),
    # Nested past the recursion limit inside an object: RecursionError.
    pytest.param(b'{"results": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="deep-member"),
    # ... also where the rest of the body reads as a success, and where the
    # deep member is one the decoders skip unread (msgspec still walks it).
    pytest.param(
        b'{"success": true, "code": "SUCCESS", "message_id": "A", "results": {"status": '
        + b'{"a":' * 5000
        + b"1"
        + b"}" * 5000
        + b"}}",
        id="deep-member-of-success",
    ),
    pytest.param(
        b'{"success": true, "message_id": "A", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        id="deep-unread-member",
    ),
    # A time that its offset pushes out of datetime's range: OverflowError.
    pytest.param(
        b'{"success": true, "message_id": "A", "timestamp": "0001-01-01T00:00:00+01:00"}',
        id="time-before-year-1",
    ),
    pytest.param(
        b'{"success": true, "message_id": "A", "timestamp": "9999-12-31T23:59:59-01:00"}',
        id="time-after-year-9999",
    ),
]


@pytest.mark.parametrize("body", FOUND)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_found_bodies(provider: str, body: bytes) -> None:
    """What the properties once found, on every adapter, after a 2xx and an error status."""
    for status in (200, 201, 400, 429, 500):
        check(sample(provider), HttpResponse(status=status, body=body))


def test_samples_have_secrets() -> None:
    """The sample adapters carry credentials, so the redaction checks test something."""
    for provider in PROVIDERS:
        assert sample(provider).secrets, provider
        assert golden_bodies(provider), provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_bytes(provider: str) -> None:
    """Random bytes, any status and any headers: a result or a ProviderError only."""

    @_settings(_BYTES)
    @given(body=raw_bodies(provider), status=st.integers(100, 599), extra=headers())
    def run(body: bytes, status: int, extra: dict[str, str]) -> None:
        check(sample(provider), HttpResponse(status=status, headers=extra, body=body))

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_json(provider: str) -> None:
    """Any JSON document, any status and any headers: a result or a ProviderError only."""

    @_settings(_JSON)
    @given(
        document=json_values(provider),
        ascii_only=st.booleans(),
        status=statuses(),
        extra=headers(),
    )
    def run(document: Any, ascii_only: bool, status: int, extra: dict[str, str]) -> None:
        body = _encode(document, ascii_only)
        check(sample(provider), HttpResponse(status=status, headers=extra, body=body))

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mutated_golden_bodies(provider: str) -> None:
    """The gateway's own answers with leaves, keys and types changed."""

    @_settings(_MUTATED)
    @given(case=mutated_goldens(provider), extra=headers())
    def run(case: tuple[int, bytes], extra: dict[str, str]) -> None:
        status, body = case
        check(sample(provider), HttpResponse(status=status, headers=extra, body=body))

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_time_like_values_anywhere(provider: str) -> None:
    """Times of any shape and range (ISO, Go, epoch s/ms, Longs) in any field of an answer."""

    @_settings(_TIMES)
    @given(case=golden_with_new_leaf(provider))
    def run(case: tuple[int, bytes]) -> None:
        status, body = case
        check(sample(provider), HttpResponse(status=status, body=body))

    run()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deeply_nested_json(provider: str) -> None:
    """A member nested past any recursion limit is an unreadable body, not a crash."""

    @_settings(_DEEP)
    @given(body=deep_documents(), status=statuses())
    def run(body: bytes, status: int) -> None:
        check(sample(provider), HttpResponse(status=status, body=body))

    run()
