"""wamsg.redis.outbox and wamsg.redis.worker: the durable outbox and the worker loop.

Unit tests run on in-process fakeredis; the run_worker tests use a real
redis-server (tests/redis_server.py) and the sandbox gateway bound to a
MockTransport (no sockets), and count what the gateway actually stored.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import fakeredis
import msgspec
import pytest
import redis.asyncio as aioredis

import wamsg
from wamsg.redis._base import connect
from wamsg.redis.outbox import MAX_INLINE_BYTES, OutboxItem, RedisOutbox
from wamsg.redis.worker import WorkerSummary, run_worker
from wamsg.sandbox import Fault, Sandbox
from wamsg.testing import MEDIA, sandbox_client

pytestmark = pytest.mark.anyio

PHONE = "+5511999990000"


def _fake() -> aioredis.Redis:
    return fakeredis.FakeAsyncRedis()


async def _take(outbox: RedisOutbox, consumer: str, *, block: float = 0.05) -> OutboxItem | None:
    """The next item for ``consumer``, or None if none comes within one round."""
    async for found in outbox._batches(consumer, 1, block):
        return found.items[0] if found.items else None
    raise AssertionError("unreachable")


def _text(i: int, to: str = PHONE) -> wamsg.Text:
    return wamsg.Text(to=to, text=f"message {i}")


def _total(summary: WorkerSummary) -> int:
    return (
        summary.sent
        + summary.replayed
        + summary.unknown
        + summary.dead
        + summary.retried
        + summary.in_flight_conflicts
    )


# -- put: checked before any I/O ------------------------------------------------


async def test_put_checks_everything_before_any_io() -> None:
    # Nothing listens on port 1: any Redis call would fail with StoreUnavailable.
    outbox = RedisOutbox(connect("redis://127.0.0.1:1/0"), "q")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    refused: list[tuple[Any, str]] = [
        (_text(1), ""),
        (_text(1), " padded "),
        (_text(1), "x" * 256),
        ("not a message", "k"),
        (wamsg.Image(to=PHONE, image=wamsg.Media(file=io.BytesIO(b"\xff\xd8"))), "k"),
        (wamsg.Image(to=PHONE, image=wamsg.Media(stream=chunks())), "k"),
        (wamsg.Image(to=PHONE, image=wamsg.Media(data=b"x" * (MAX_INLINE_BYTES + 1))), "k"),
        (wamsg.Text(to=PHONE, text="hi", idempotency_key="other"), "k"),
    ]
    for message, key in refused:
        with pytest.raises(wamsg.InvalidMessage) as caught:
            await outbox.put(message, key=key)
        assert "5511999990000" not in str(caught.value)
    with pytest.raises(wamsg.StoreUnavailable) as down:
        await outbox.put(_text(1), key="k")
    assert down.value.store == "outbox"
    assert down.value.outcome is wamsg.Outcome.NOT_SENT
    assert "127.0.0.1" not in str(down.value)


async def test_options_are_checked() -> None:
    redis = _fake()
    for bad in ("", "a b", "{q}", "q\n"):
        with pytest.raises(wamsg.ConfigError):
            RedisOutbox(redis, bad)
    with pytest.raises(wamsg.ConfigError):
        RedisOutbox(redis, max_deliveries=0)
    with pytest.raises(wamsg.ConfigError):
        RedisOutbox(redis, reclaim_after=0)
    with pytest.raises(wamsg.ConfigError, match="decode_responses"):
        RedisOutbox(fakeredis.FakeAsyncRedis(decode_responses=True))
    outbox = RedisOutbox(connect("redis://127.0.0.1:1/0"))
    with pytest.raises(wamsg.ConfigError, match="socket timeout"):
        outbox.consume("c", block=10)
    with pytest.raises(wamsg.ConfigError):
        outbox.consume("bad name")


# -- round trips ----------------------------------------------------------------


async def test_messages_round_trip(tmp_path: Path) -> None:
    picture = tmp_path / "tiny.jpg"
    shutil.copy(MEDIA / "tiny.jpg", picture)
    messages: list[wamsg.Message] = [
        wamsg.Text(to=PHONE, text="olá 👋", reply_to="true_x_3EB0", mentions=("+5511988887777",)),
        wamsg.Text(to="120363025246125486@g.us", text="to a group"),
        wamsg.Image(
            to=PHONE,
            image=wamsg.Media(url="https://example.com/a.jpg", mimetype="image/jpeg"),
            caption="a caption",
        ),
        wamsg.Image(
            to=PHONE,
            image=wamsg.Media(data=(MEDIA / "tiny.png").read_bytes(), filename="t.png"),
            view_once=True,
        ),
        wamsg.Image(to=PHONE, image=wamsg.Media(path=str(picture))),
    ]
    outbox = RedisOutbox(_fake(), "rt")
    ids = [await outbox.put(m, key=f"key-{i}") for i, m in enumerate(messages)]
    got = []
    async for item in outbox.consume("c1", batch=2, block=0.05):
        got.append(item)
        if len(got) == len(messages):
            break
    assert [item.id for item in got] == ids
    for i, (item, message) in enumerate(zip(got, messages, strict=True)):
        assert item.key == f"key-{i}"
        assert item.deliveries == 1
        assert item.enqueued_at > 1e9  # seconds since the epoch, from the stream id
        assert item.message == msgspec.structs.replace(message, idempotency_key=item.key)
        assert "5511999990000" not in repr(item)


async def test_ack_deletes_the_entry() -> None:
    redis = _fake()
    outbox = RedisOutbox(redis, "ack")
    await outbox.put(_text(1), key="a")
    await outbox.put(_text(2), key="b")
    item = await _take(outbox, "c1")
    assert item is not None
    assert await outbox.stats() == wamsg_stats(length=2, pending=1, consumers=1)
    await item.ack()
    assert await redis.xlen(outbox.stream) == 1  # XACK alone would leave it (§4.5)
    assert await outbox.stats() == wamsg_stats(length=1, pending=0, consumers=1)
    assert (await outbox.stats()).waiting == 1


def wamsg_stats(**counts: int) -> Any:
    from wamsg.redis.outbox import OutboxStats

    return OutboxStats(
        **{"length": 0, "pending": 0, "dead": 0, "unknown": 0, "consumers": 0, **counts}
    )


async def test_retry_later_is_reclaimed_by_another_consumer_after_reclaim_after() -> None:
    outbox = RedisOutbox(_fake(), "retry", reclaim_after=0.2)
    await outbox.put(_text(1), key="a")
    first = await _take(outbox, "c1")
    assert first is not None
    await first.retry_later()
    assert await _take(outbox, "c2") is None  # still backing off
    await anyio.sleep(0.25)
    again = await _take(outbox, "c2")
    assert again is not None
    assert (again.id, again.key, again.deliveries, again.consumer) == (first.id, "a", 2, "c2")
    assert again.message == first.message
    # c1 lost it: its late retry_later changes nothing and cannot steal it back.
    await first.retry_later()
    assert not await first.touch()
    await again.ack()
    assert await outbox.stats() == wamsg_stats(consumers=2)


async def test_a_crashed_consumers_entries_are_taken_over() -> None:
    outbox = RedisOutbox(_fake(), "crash", reclaim_after=0.2)
    for i in range(3):
        await outbox.put(_text(i), key=f"k{i}")
    taken = []
    async for item in outbox.consume("doomed", batch=3, block=0.05):
        taken.append(item.id)
        break  # "crashes": takes entries and never settles them
    assert (await outbox.stats()).pending == 3
    await anyio.sleep(0.25)
    survivors = []
    async for item in outbox.consume("survivor", batch=3, block=0.05):
        survivors.append((item.id, item.deliveries))
        await item.ack()
        if len(survivors) == 3:
            break
    assert survivors[0][0] == taken[0]
    assert {deliveries for _, deliveries in survivors} == {2}
    assert await outbox.stats() == wamsg_stats(consumers=2)


async def test_release_hands_the_entry_out_at_once() -> None:
    outbox = RedisOutbox(_fake(), "release", reclaim_after=30)
    await outbox.put(_text(1), key="a")
    item = await _take(outbox, "c1")
    assert item is not None
    assert await item.release()
    again = await _take(outbox, "c2")
    assert again is not None
    assert (again.id, again.deliveries) == (item.id, 1)


async def test_too_many_deliveries_go_to_dead() -> None:
    outbox = RedisOutbox(_fake(), "max", reclaim_after=0.05, max_deliveries=2)
    await outbox.put(_text(1), key="a")
    for _ in range(2):
        item = await _take(outbox, "c1")
        assert item is not None
        await item.retry_later()
        await anyio.sleep(0.07)
    assert await _take(outbox, "c1") is None
    (letter,) = await outbox.dead_letters()
    assert letter.key == "a"
    assert letter.deliveries == 3
    assert "max_deliveries 2" in letter.reason
    assert letter.message == msgspec.structs.replace(_text(1), idempotency_key="a")
    assert await outbox.stats() == wamsg_stats(dead=1, consumers=1)


async def test_corrupt_entries_go_to_dead_and_never_crash_the_consumer() -> None:
    redis = _fake()
    outbox = RedisOutbox(redis, "corrupt")
    await outbox.put(_text(1), key="good-1")
    await redis.xadd(outbox.stream, {"m": b"\xc1 not msgpack"})
    await redis.xadd(outbox.stream, {"other": b"no message field"})
    await redis.xadd(outbox.stream, {"m": msgspec.msgpack.encode({"v": 1, "key": "x"})})
    await outbox.put(_text(2), key="good-2")
    keys = []
    async for item in outbox.consume("c1", batch=10, block=0.05):
        keys.append(item.key)
        await item.ack()
        if len(keys) == 2:
            break
    assert keys == ["good-1", "good-2"]
    letters = await outbox.dead_letters()
    assert [(d.reason, d.message) for d in letters] == [("corrupt", None)] * 3
    assert all(d.original_id and d.at > 1e9 for d in letters)
    assert await outbox.stats() == wamsg_stats(dead=3, consumers=1)


async def test_dead_and_unknown_copy_the_entry_and_ack_it() -> None:
    redis = _fake()
    outbox = RedisOutbox(redis, "settle")
    await outbox.put(_text(1), key="to-dead")
    await outbox.put(_text(2), key="to-unknown")
    first = await _take(outbox, "c1")
    second = await _take(outbox, "c1")
    assert first is not None
    assert second is not None
    await first.dead(f"Rejected: wawp: HTTP 400 for {PHONE}")
    await second.unknown("Disconnected: the connection closed")
    (dead,) = await outbox.dead_letters()
    (unknown,) = await outbox.unknowns()
    assert (dead.key, dead.original_id, dead.deliveries) == ("to-dead", first.id, 1)
    assert "5511999990000" not in dead.reason  # redacted on the way in
    assert dead.message == first.message
    assert (unknown.key, unknown.reason) == ("to-unknown", "Disconnected: the connection closed")
    assert await redis.xlen(outbox.stream) == 0
    assert await outbox.stats() == wamsg_stats(dead=1, unknown=1, consumers=1)


async def test_a_full_outbox_refuses_instead_of_trimming_unsent_entries() -> None:
    outbox = RedisOutbox(_fake(), "full", maxlen=2)
    await outbox.put(_text(1), key="a")
    await outbox.put(_text(2), key="b")
    with pytest.raises(wamsg.StoreUnavailable, match="full"):
        await outbox.put(_text(3), key="c")
    assert (await outbox.stats()).length == 2


async def test_a_deleted_stream_is_recreated() -> None:
    redis = _fake()
    outbox = RedisOutbox(redis, "gone")
    await outbox.put(_text(1), key="a")
    await redis.delete(outbox.stream)  # FLUSHALL, a restarted Redis without persistence
    assert await _take(outbox, "c1") is None
    await outbox.put(_text(2), key="b")
    item = await _take(outbox, "c1")
    assert item is not None
    assert item.key == "b"


async def test_entries_deleted_while_pending_are_dropped_from_the_pending_list(
    redis: aioredis.Redis,
) -> None:
    # Real Redis 7: XAUTOCLAIM reports deleted entries in its third element.
    outbox = RedisOutbox(redis, "deleted", reclaim_after=0.05)
    await outbox.put(_text(1), key="a")
    await outbox.put(_text(2), key="b")
    first = await _take(outbox, "c1")
    assert first is not None
    await redis.xdel(outbox.stream, first.id)
    await anyio.sleep(0.1)
    second = await _take(outbox, "c2")
    assert second is not None
    assert second.key == "b"
    await second.ack()
    assert await outbox.stats() == wamsg_stats(consumers=2)


async def test_an_entry_settled_while_being_reclaimed_is_not_dead_lettered() -> None:
    # The slow first owner sends the entry and acks it in the moment between
    # the second consumer's XAUTOCLAIM and its XPENDING for the delivery
    # count: the entry is gone, and was sent. It must not become a dead
    # letter (a human would send it again from there).
    redis = _fake()
    outbox = RedisOutbox(redis, "settled-meanwhile", reclaim_after=0.05)
    await outbox.put(_text(1), key="a")
    slow = await _take(outbox, "slow")
    assert slow is not None
    await anyio.sleep(0.07)
    real_xautoclaim = redis.xautoclaim

    async def xautoclaim(*args: Any, **kwargs: Any) -> Any:
        answer = await real_xautoclaim(*args, **kwargs)
        await slow.ack()  # the first owner finishes meanwhile
        return answer

    redis.xautoclaim = xautoclaim  # type: ignore[method-assign]
    assert await _take(outbox, "fast") is None
    assert await outbox.dead_letters() == []
    assert await outbox.stats() == wamsg_stats(consumers=2)


async def test_consume_skips_batch_items_another_consumer_took_over_meanwhile() -> None:
    outbox = RedisOutbox(_fake(), "batch-wait", reclaim_after=0.2)
    ids = [await outbox.put(_text(i), key=f"k{i}") for i in range(3)]
    items = outbox.consume("c1", batch=3, block=0.05)
    first = await items.__anext__()
    assert first.id == ids[0]
    await anyio.sleep(0.25)  # c1 works long on the first; the others wait in its batch
    assert await first.touch()  # (its heartbeat keeps the first one its own)
    other = await _take(outbox, "c2")  # ... and c2 takes the second over
    assert other is not None
    assert other.id == ids[1]
    await first.ack()
    # c1 does not hand out what c2 owns now; the third is still its own.
    following = await items.__anext__()
    assert following.id == ids[2]
    assert following.consumer == "c1"
    await items.aclose()  # type: ignore[attr-defined]


async def test_consume_stops_when_its_task_is_cancelled() -> None:
    outbox = RedisOutbox(_fake(), "cancel")
    seen: list[str] = []

    async def consume() -> None:
        async for item in outbox.consume("c1", block=0.05):
            seen.append(item.key)
            await item.ack()

    with anyio.move_on_after(0.3):
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await outbox.put(_text(1), key="a")
            await anyio.sleep(0.15)
    assert seen == ["a"]


# -- run_worker against the sandbox ------------------------------------------------


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's (emptied) redis-server."""
    client = connect(redis_url)
    yield client
    await client.aclose()


def _client(box: Sandbox, **options: Any) -> wamsg.Client:
    return sandbox_client("wawp", box, **options)


async def _dedupe(redis: aioredis.Redis) -> wamsg.DedupeStore:
    from wamsg.redis.dedupe import RedisDedupeStore

    return RedisDedupeStore(redis, namespace="outbox-tests")


async def test_run_worker_sends_each_key_once_and_settles_every_entry(
    redis: aioredis.Redis,
) -> None:
    outbox = RedisOutbox(redis, "bulk", reclaim_after=0.5)
    box = Sandbox(seed=3)
    for i in range(200):
        await outbox.put(_text(i), key=f"order-{i}")
    for i in range(0, 200, 10):  # 20 duplicate enqueues
        await outbox.put(_text(i), key=f"order-{i}")
    bad = wamsg.Text(to="12345678@lid", text="wawp refuses this chat id")
    await outbox.put(bad, key="rejected-1")
    box.add_fault(Fault(kind="drop", provider="wawp", path="/send/text", times=3))
    labels: dict[str, int] = {}

    def progress(item: OutboxItem, label: str, outcome: Any) -> None:
        labels[label] = labels.get(label, 0) + 1

    dedupe = await _dedupe(redis)
    async with _client(box, dedupe=dedupe) as client:
        summary = await run_worker(
            outbox, client, consumer="w1", concurrency=8, idle_exit=0.3, on_item=progress
        )
    texts = [m.text for m in box.outbox]
    assert len(texts) == 200  # the 3 dropped ones were stored by the gateway, once
    assert len(set(texts)) == 200
    assert summary.seen == 221 == _total(summary)
    unknowns = await outbox.unknowns()
    dropped = {u.key for u in unknowns}
    assert len(dropped) == 3
    # A duplicate of a dropped key replays its stored unknown: :unknown again.
    dropped_twice = len(dropped & {f"order-{i}" for i in range(0, 200, 10)})
    assert len(unknowns) == summary.unknown == 3 + dropped_twice
    assert summary.sent == 200 - 3
    assert summary.dead == 1
    assert summary.replayed + summary.in_flight_conflicts == 20 - dropped_twice
    assert labels == {k: v for k, v in msgspec.structs.asdict(summary).items() if v and k != "seen"}
    stats = await outbox.stats()
    assert (stats.length, stats.pending, stats.dead, stats.unknown) == (0, 0, 1, summary.unknown)
    (dead,) = await outbox.dead_letters()
    assert dead.key == "rejected-1"
    assert dead.reason.startswith("Rejected: wawp: HTTP 400")
    # An unknown is never sent again: enqueued again, another worker replays
    # the stored outcome.
    for key in dropped:
        await outbox.put(_text(int(key.split("-")[1])), key=key)
    async with _client(box, dedupe=dedupe) as client:
        again = await run_worker(outbox, client, consumer="w2", idle_exit=0.2)
    assert again.unknown == 3
    assert again.sent == 0
    assert len(box.outbox) == 200


async def test_not_sent_is_retried_then_dead_after_max_deliveries(redis: aioredis.Redis) -> None:
    outbox = RedisOutbox(redis, "flaky", reclaim_after=0.1, max_deliveries=3)
    box = Sandbox(seed=4)
    await outbox.put(_text(1), key="flaky-1")
    await outbox.put(_text(2), key="never")
    # The first send of each key fails with 503 before sending (not_sent) ...
    box.add_fault(Fault(kind="server_error", provider="wawp", times=1))
    # ... and every send to the second key's text fails, always.
    box.add_fault(Fault(kind="server_error", provider="wawp", times=None, probability=1.0))
    async with _client(box, dedupe=await _dedupe(redis), retry=wamsg.NO_RETRY) as client:
        first = await run_worker(outbox, client, consumer="w1", concurrency=1, idle_exit=0.3)
    assert first.sent == 0
    assert first.dead == 2
    assert first.retried == 4  # deliveries 1 and 2 of each key
    (a, b) = await outbox.dead_letters()
    assert {a.key, b.key} == {"flaky-1", "never"}
    assert all(d.reason.startswith("not sent after 3 deliveries") for d in (a, b))
    assert len(box.outbox) == 0


async def test_a_turn_the_shared_rate_limit_gives_too_late_uses_up_no_delivery(
    redis: aioredis.Redis,
) -> None:
    # A backlog behind a low shared rate: 6 sends at once at 10/s reserve
    # turns up to 0.5 s out, past their 0.25 s deadline, so half of them are
    # refused by the local limiter each round (not_sent, no request made).
    # That is waiting for capacity, not a failing message: it must not burn
    # the entry's deliveries and dead-letter messages that were never tried.
    from wamsg.redis.limits import RedisRateLimiter

    outbox = RedisOutbox(redis, "backlog", reclaim_after=0.05, max_deliveries=2)
    box = Sandbox(seed=8)
    for i in range(12):
        await outbox.put(_text(i), key=f"backlog-{i}")
    limiter = RedisRateLimiter(redis, "backlog-gw", wamsg.Limits(rate=10, burst=1))
    async with _client(
        box, dedupe=await _dedupe(redis), rate_limiter=limiter, timeout=0.25
    ) as client:
        with anyio.fail_after(30):
            summary = await run_worker(outbox, client, consumer="w1", concurrency=6, idle_exit=0.3)
    assert await outbox.dead_letters() == []
    assert summary.dead == 0
    assert summary.retried >= 1  # the limiter did refuse turns
    assert sorted(m.text for m in box.outbox) == sorted(f"message {i}" for i in range(12))


async def test_an_outage_of_the_dedupe_store_uses_up_no_delivery(redis: aioredis.Redis) -> None:
    # The dedupe store's Redis is down (here: its first 3 claims of each key
    # fail) while the outbox's answers: every send stops before any request
    # (StoreUnavailable, not_sent). The messages did not fail, the store did:
    # after the outage each is sent, none dead-lettered.
    from wamsg.redis.dedupe import RedisDedupeStore

    fails: dict[str, int] = {}

    class Flaky(RedisDedupeStore):
        async def claim(self, key: str, fingerprint: str, *, lease: float) -> Any:
            fails[key] = fails.get(key, 0) + 1
            if fails[key] <= 3:
                raise wamsg.StoreUnavailable(
                    "the Redis dedupe store is unreachable", store="dedupe"
                )
            return await super().claim(key, fingerprint, lease=lease)

    outbox = RedisOutbox(redis, "dedupe-down", reclaim_after=0.05, max_deliveries=2)
    box = Sandbox(seed=9)
    for i in range(4):
        await outbox.put(_text(i), key=f"dedupe-down-{i}")
    dedupe = Flaky(redis, namespace="outbox-tests")
    async with _client(box, dedupe=dedupe, retry=wamsg.NO_RETRY) as client:
        with anyio.fail_after(30):
            summary = await run_worker(outbox, client, consumer="w1", idle_exit=0.3)
    assert await outbox.dead_letters() == []
    assert (summary.sent, summary.retried, summary.dead) == (4, 12, 0)
    assert sorted(m.text for m in box.outbox) == [f"message {i}" for i in range(4)]


async def test_entries_read_ahead_stay_owned_while_they_wait_for_a_sender(
    redis: aioredis.Redis,
) -> None:
    # Each worker reads the next entry while its one sender is busy with a
    # send longer than reclaim_after. The entry it holds meanwhile must stay
    # its own: otherwise the other worker takes it over, both hand it out,
    # and the inflated delivery counts dead-letter messages never tried.
    outbox = RedisOutbox(redis, "read-ahead", reclaim_after=0.6, max_deliveries=2)
    box = Sandbox(seed=11)
    box.add_fault(Fault(kind="slow", provider="wawp", delay=1.0, times=None))
    for i in range(6):
        await outbox.put(_text(i), key=f"read-ahead-{i}")
    dedupe = await _dedupe(redis)
    async with _client(box, dedupe=dedupe) as one, _client(box, dedupe=dedupe) as two:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                summaries: list[WorkerSummary] = []

                async def work(client: wamsg.Client, name: str) -> None:
                    summaries.append(
                        await run_worker(
                            outbox, client, consumer=name, concurrency=1, idle_exit=0.5
                        )
                    )

                group.start_soon(work, one, "w1")
                group.start_soon(work, two, "w2")
    assert await outbox.dead_letters() == []
    assert sorted(m.text for m in box.outbox) == [f"message {i}" for i in range(6)]
    # Each entry was handed out once: no take-over, no replay, no conflict.
    assert sum(s.seen for s in summaries) == 6
    assert sum(s.sent for s in summaries) == 6


async def test_retry_later_then_sent(redis: aioredis.Redis) -> None:
    outbox = RedisOutbox(redis, "later", reclaim_after=0.1)
    box = Sandbox(seed=5)
    for i in range(5):
        await outbox.put(_text(i), key=f"k{i}")
    box.add_fault(Fault(kind="server_error", provider="wawp", times=5))
    async with _client(box, dedupe=await _dedupe(redis), retry=wamsg.NO_RETRY) as client:
        summary = await run_worker(outbox, client, consumer="w1", idle_exit=0.3)
    assert (summary.sent, summary.retried, summary.seen) == (5, 5, 10)
    assert sorted(m.text for m in box.outbox) == [f"message {i}" for i in range(5)]


async def test_stop_event_ends_the_worker_gracefully(redis: aioredis.Redis) -> None:
    outbox = RedisOutbox(redis, "stop", reclaim_after=30)
    box = Sandbox(seed=6)
    for i in range(50):
        await outbox.put(_text(i), key=f"k{i}")
    # Each send takes 50 ms: the stop comes while some are in flight.
    box.add_fault(Fault(kind="slow", provider="wawp", delay=0.05, times=None))
    stop = anyio.Event()
    settled: list[str] = []

    def progress(item: OutboxItem, label: str, outcome: Any) -> None:
        settled.append(label)
        if len(settled) == 10:
            stop.set()

    async with _client(box, dedupe=await _dedupe(redis)) as client:
        summary = await run_worker(
            outbox, client, consumer="w1", concurrency=4, stop=stop, on_item=progress
        )
    assert summary.sent == summary.seen == len(box.outbox) >= 10
    assert summary.sent < 50
    stats = await outbox.stats()
    assert stats.length == 50 - summary.sent
    # In-flight sends were settled; entries read ahead and never tried were
    # released: still pending, but up for grabs at once, their delivery undone.
    assert stats.pending <= 4
    deliveries: list[int] = []

    def record(item: OutboxItem, label: str, outcome: Any) -> None:
        deliveries.append(item.deliveries)

    async with _client(box, dedupe=await _dedupe(redis)) as client:
        with anyio.fail_after(10):  # far below reclaim_after
            rest = await run_worker(outbox, client, consumer="w2", idle_exit=0.2, on_item=record)
    assert rest.sent == 50 - summary.sent
    assert set(deliveries) == {1}
    assert sorted(m.text for m in box.outbox) == sorted(f"message {i}" for i in range(50))


async def test_images_go_out_from_url_bytes_and_path(redis: aioredis.Redis, tmp_path: Path) -> None:
    picture = tmp_path / "tiny.jpg"
    shutil.copy(MEDIA / "tiny.jpg", picture)
    png = (MEDIA / "tiny.png").read_bytes()
    outbox = RedisOutbox(redis, "images")
    box = Sandbox(seed=8)
    await outbox.put(
        wamsg.Image(to=PHONE, image=wamsg.Media(url="https://example.com/a.jpg"), caption="u"),
        key="url",
    )
    await outbox.put(wamsg.Image(to=PHONE, image=wamsg.Media(data=png), caption="b"), key="bytes")
    await outbox.put(wamsg.Image(to=PHONE, image=wamsg.Media(path=str(picture))), key="path")
    async with sandbox_client("waha", box, dedupe=await _dedupe(redis)) as client:
        summary = await run_worker(outbox, client, consumer="w1", idle_exit=0.2)
    assert (summary.sent, summary.seen) == (3, 3)
    stored = {m.caption: m for m in box.outbox}
    assert stored["u"].image_url == "https://example.com/a.jpg"
    assert stored["b"].image_bytes == png
    assert stored[None].image_bytes == picture.read_bytes()


async def test_a_key_reused_for_another_message_is_dead(redis: aioredis.Redis) -> None:
    outbox = RedisOutbox(redis, "reused")
    box = Sandbox(seed=9)
    await outbox.put(_text(1), key="same")
    async with _client(box, dedupe=await _dedupe(redis)) as client:
        first = await run_worker(outbox, client, consumer="w1", idle_exit=0.1)
        await outbox.put(_text(2), key="same")
        second = await run_worker(outbox, client, consumer="w1", idle_exit=0.1)
    assert (first.sent, second.dead) == (1, 1)
    (dead,) = await outbox.dead_letters()
    assert dead.reason.startswith("IdempotencyKeyReused: ")
    assert len(box.outbox) == 1


async def test_a_long_send_keeps_its_entry(redis: aioredis.Redis) -> None:
    # The send outlasts reclaim_after three times over: the worker's
    # heartbeat keeps the entry, so the second worker never takes it over.
    outbox = RedisOutbox(redis, "long", reclaim_after=0.2)
    box = Sandbox(seed=10)
    await outbox.put(_text(1), key="slow")
    box.add_fault(Fault(kind="slow", provider="wawp", delay=0.6))
    dedupe = await _dedupe(redis)
    async with _client(box, dedupe=dedupe) as one, _client(box, dedupe=dedupe) as two:
        summaries: list[WorkerSummary] = []

        async def work(client: wamsg.Client, name: str) -> None:
            summaries.append(await run_worker(outbox, client, consumer=name, idle_exit=0.3))

        async with anyio.create_task_group() as group:
            group.start_soon(work, one, "w1")
            await anyio.sleep(0.05)
            group.start_soon(work, two, "w2")
    assert sorted((s.sent, s.seen, s.in_flight_conflicts) for s in summaries) == [
        (0, 0, 0),
        (1, 1, 0),
    ]
    assert len(box.outbox) == 1


async def test_a_closed_sender_stops_the_worker_and_gives_the_entry_back(
    redis: aioredis.Redis,
) -> None:
    outbox = RedisOutbox(redis, "closed", reclaim_after=30)
    await outbox.put(_text(1), key="k")
    client = _client(Sandbox(seed=11))
    await client.aclose()
    with pytest.raises(wamsg.ConfigError, match="closed"):
        await run_worker(outbox, client, consumer="w1")
    box = Sandbox(seed=11)
    deliveries: list[int] = []

    def record(item: OutboxItem, label: str, outcome: Any) -> None:
        deliveries.append(item.deliveries)

    async with _client(box) as client:
        with anyio.fail_after(10):  # given back: no reclaim_after wait
            summary = await run_worker(outbox, client, consumer="w2", idle_exit=0.1, on_item=record)
    assert (summary.sent, deliveries) == (1, [1])


async def test_run_worker_checks_its_arguments() -> None:
    outbox = RedisOutbox(_fake(), "args")
    async with _client(Sandbox(seed=12), dedupe=False) as undeduped:
        with pytest.raises(wamsg.ConfigError, match="dedupe"):
            await run_worker(outbox, undeduped, consumer="w1")
    async with _client(Sandbox(seed=12)) as client:
        for bad in ({"consumer": "a b"}, {"consumer": "w", "concurrency": 0}):
            with pytest.raises(wamsg.ConfigError):
                await run_worker(outbox, client, **bad)


def test_trio_is_refused_with_a_clear_error() -> None:
    async def main() -> list[str]:
        outbox = RedisOutbox(_fake(), "trio")
        messages = []
        with pytest.raises(wamsg.ConfigError) as put:
            await outbox.put(_text(1), key="k")
        messages.append(put.value.message)
        async with _client(Sandbox(seed=13)) as client:
            with pytest.raises(wamsg.ConfigError) as worker:
                await run_worker(outbox, client, consumer="w1")
        messages.append(worker.value.message)
        return messages

    for message in anyio.run(main, backend="trio"):
        assert "asyncio" in message


class _Proxy:
    """A TCP relay to Redis that can be cut: an outage the data survives."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server: asyncio.Server | None = None
        self.port = 0
        self.pipes: set[asyncio.StreamWriter] = set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pipes.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.pipes.discard(writer)
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._relay(reader, up_writer), self._relay(up_reader, writer))

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in list(self.pipes):
            pipe.transport.abort()
        await self.server.wait_closed()


async def test_redis_down_mid_run_loses_nothing_and_sends_nothing_twice(
    redis_url: str,
) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = _Proxy(port)
    await proxy.up()
    redis = connect(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=1.0)
    outbox = RedisOutbox(redis, "outage", reclaim_after=0.2)
    direct = connect(redis_url)
    box = Sandbox(seed=7)
    for i in range(100):
        await outbox.put(_text(i), key=f"k{i}")
    settled: list[str] = []
    during: list[int] = []

    async def restore() -> None:
        await anyio.sleep(0.5)
        # Meanwhile the worker failed to claim, read and settle: nothing is lost.
        during.append((await RedisOutbox(direct, "outage").stats()).length)
        await proxy.up()

    async def progress(item: OutboxItem, label: str, outcome: Any) -> None:
        settled.append(label)
        if len(settled) == 30:
            # With one sender, nothing is in flight here: Redis goes away
            # between two sends (claims, reads and acks then fail).
            await proxy.down()
            group.start_soon(restore)

    async with (
        _client(box, dedupe=await _dedupe(redis)) as client,
        anyio.create_task_group() as group,
    ):
        summary = await run_worker(
            outbox, client, consumer="w1", concurrency=1, idle_exit=0.5, on_item=progress
        )
    texts = [m.text for m in box.outbox]
    assert len(texts) == len(set(texts)) == 100  # every one sent, none twice
    assert during == [70]
    assert summary.sent + summary.replayed == 100
    assert summary.retried >= 1  # the StoreUnavailable of the first claim after the cut
    assert summary.unknown == summary.dead == 0
    stats = await outbox.stats()
    assert (stats.length, stats.pending) == (0, 0)
    await redis.aclose()
    await direct.aclose()
    await proxy.down()
