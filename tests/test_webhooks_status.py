"""The status ladder, the StatusTracker and the WebhookDeduper, without HTTP."""

from __future__ import annotations

import itertools

import anyio
import pytest

from wamsg import ConfigError, MemoryDedupeStore, SendResult, Status
from wamsg.webhooks._model import LADDER, Event, StatusUpdate, advances, message_key, rank
from wamsg.webhooks.dedupe import WebhookDeduper
from wamsg.webhooks.status import StatusChange, StatusTracker

WAHA_ID = "true_5511999990000@c.us_3EB0AAAABBBBCCCC"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status_event(provider: str, ids: tuple[str, ...], status: Status, who: str = "") -> Event:
    return Event(
        provider=provider,
        kind="status",
        name="message.ack",
        dedupe_key=f"{provider}:{ids}:{status}",
        status=StatusUpdate(
            message_ids=ids, status=status, raw_status=status.value, recipient=who or None
        ),
    )


# -- the ladder -----------------------------------------------------------------


def test_the_ladder_order() -> None:
    assert [rank(s) for s in LADDER] == [0, 1, 2, 3, 4]
    assert rank(Status.FAILED) is None
    assert rank(Status.UNKNOWN) is None


@pytest.mark.parametrize(("low", "high"), list(itertools.combinations(LADDER, 2)))
def test_only_up(low: Status, high: Status) -> None:
    assert advances(low, high)
    assert not advances(high, low)
    assert not advances(high, high)


def test_failed_and_unknown() -> None:
    assert advances(None, Status.FAILED)
    assert advances(Status.SENT, Status.FAILED)
    assert not advances(Status.DELIVERED, Status.FAILED)  # the recipient has it
    assert not advances(Status.FAILED, Status.READ)
    assert not advances(Status.SENT, Status.UNKNOWN)
    assert advances(Status.UNKNOWN, Status.SENT)


def test_message_key_meets_both_id_forms() -> None:
    assert message_key("waha", WAHA_ID) == "3EB0AAAABBBBCCCC"
    group_ack = "true_120363012345678901@g.us_3EB0AAAABBBBCCCC_5511988887777@c.us"
    assert message_key("waha", group_ack) == "3EB0AAAABBBBCCCC"
    assert message_key("gowa", "3EB0AAAABBBBCCCC") == "3EB0AAAABBBBCCCC"


# -- the tracker ----------------------------------------------------------------


def test_sent_delivered_read_once_each_in_order() -> None:
    seen: list[StatusChange] = []
    tracker = StatusTracker(on_change=seen.append)
    result = SendResult(provider="waha", message_id=WAHA_ID, status=Status.QUEUED)
    assert [c.status for c in tracker.track(result)] == [Status.QUEUED]
    for status in (Status.SENT, Status.DELIVERED, Status.DELIVERED, Status.READ, Status.SENT):
        tracker.update(status_event("waha", (WAHA_ID,), status))
    assert [c.status for c in seen] == [Status.QUEUED, Status.SENT, Status.DELIVERED, Status.READ]
    assert seen[-1].previous is Status.DELIVERED
    assert all(c.message_id == WAHA_ID for c in seen)
    assert tracker.status("waha", WAHA_ID) is Status.READ


def test_read_before_delivered_stays_read() -> None:
    tracker = StatusTracker()
    tracker.track(SendResult(provider="gowa", message_id="3EB0X1", status=Status.SENT))
    assert tracker.update(status_event("gowa", ("3EB0X1",), Status.READ))
    assert tracker.update(status_event("gowa", ("3EB0X1",), Status.DELIVERED)) == []
    assert tracker.status("gowa", "3EB0X1") is Status.READ


def test_a_receipt_before_the_send_returned_is_applied_when_it_does() -> None:
    tracker = StatusTracker()
    # gowa#726: the ack webhook beats the HTTP answer.
    assert tracker.update(status_event("gowa", ("3EB0EARLY",), Status.DELIVERED)) == []
    changes = tracker.track(SendResult(provider="gowa", message_id="3EB0EARLY", status=Status.SENT))
    assert [(c.status, c.early) for c in changes] == [
        (Status.SENT, False),
        (Status.DELIVERED, True),
    ]


def test_held_receipts_expire_and_are_bounded() -> None:
    clock = Clock()
    tracker = StatusTracker(pending_ttl=10, max_pending=3, clock=clock)
    tracker.update(status_event("gowa", ("OLD",), Status.DELIVERED))
    clock.now += 11
    changes = tracker.track(SendResult(provider="gowa", message_id="OLD", status=Status.SENT))
    assert [c.status for c in changes] == [Status.SENT]
    for n in range(10):
        tracker.update(status_event("gowa", (f"ID{n}",), Status.READ))
    assert tracker._held_count <= 3


def test_per_recipient_in_a_group() -> None:
    tracker = StatusTracker()
    group_id = "true_120363012345678901@g.us_3EB0GROUP"
    tracker.track(SendResult(provider="waha", message_id=group_id, status=Status.SENT))
    tracker.update(status_event("waha", (group_id,), Status.READ, "5511911112222@c.us"))
    changes = tracker.update(
        status_event("waha", (group_id,), Status.DELIVERED, "5511933334444@c.us")
    )
    assert [c.recipient for c in changes] == ["5511933334444"]
    assert tracker.status("waha", group_id) is Status.READ
    assert tracker.status("waha", group_id, "5511933334444@s.whatsapp.net") is Status.DELIVERED


def test_tracked_messages_are_bounded() -> None:
    tracker = StatusTracker(max_messages=100)
    for n in range(1000):
        tracker.track(SendResult(provider="gowa", message_id=f"M{n}", status=Status.SENT))
    assert len(tracker) == 100
    assert tracker.status("gowa", "M999") is Status.SENT
    assert tracker.status("gowa", "M0") is None


def test_no_number_in_a_change_repr() -> None:
    change = StatusChange(
        provider="waha", message_id=WAHA_ID, status=Status.READ, recipient="5511999990000"
    )
    assert "999990000" not in repr(change)


@pytest.mark.anyio
async def test_wait_for_a_status() -> None:
    tracker = StatusTracker()
    result = SendResult(provider="gowa", message_id="3EB0WAIT", status=Status.SENT)
    tracker.track(result)
    async with anyio.create_task_group() as tg:

        async def later() -> None:
            await anyio.sleep(0.01)
            tracker.update(status_event("gowa", ("3EB0WAIT",), Status.READ))

        tg.start_soon(later)
        assert await tracker.wait(result, Status.DELIVERED, timeout=5) is Status.READ
    with pytest.raises(TimeoutError):
        await tracker.wait(result, Status.PLAYED, timeout=0.01)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        StatusTracker(max_messages=0)
    with pytest.raises(ConfigError):
        StatusTracker(pending_ttl=0)
    with pytest.raises(ConfigError, match="provider"):
        StatusTracker().update(
            StatusUpdate(message_ids=("x",), status=Status.READ, raw_status="read")
        )


# -- the deduper ----------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_claims_have_one_winner() -> None:
    deduper = WebhookDeduper()
    event = status_event("gowa", ("3EB0DUP",), Status.READ)
    winners: list[object] = []

    async def claim() -> None:
        ticket = await deduper.claim(event)
        if ticket is not None:
            winners.append(ticket)
            await anyio.sleep(0.01)  # processing
            await deduper.done(ticket)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(claim)
    assert len(winners) == 1
    assert await deduper.claim(event) is None  # and later redeliveries too


@pytest.mark.anyio
async def test_a_released_claim_can_be_claimed_again() -> None:
    deduper = WebhookDeduper()
    event = status_event("gowa", ("3EB0REL",), Status.READ)
    ticket = await deduper.claim(event)
    assert ticket is not None
    await deduper.release(ticket)
    assert await deduper.claim(event) is not None


@pytest.mark.anyio
async def test_a_crashed_claim_reads_as_done_after_its_lease() -> None:
    clock = Clock()
    deduper = WebhookDeduper(MemoryDedupeStore(clock=clock), lease=5)
    event = status_event("gowa", ("3EB0CRASH",), Status.READ)
    assert await deduper.claim(event) is not None  # never finished
    clock.now += 6
    assert await deduper.claim(event) is None  # at most once


def test_a_store_that_forgets_too_soon_is_warned_about() -> None:
    deduper = WebhookDeduper(MemoryDedupeStore(ttl=10))
    with pytest.warns(UserWarning, match="duplicates can get through"):
        deduper.check_horizon("waha", 36 * 3600)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_timed_out_waits_leave_nothing_behind() -> None:
    tracker = StatusTracker()
    result = SendResult(provider="gowa", message_id="3EB0POLL", status=Status.SENT)
    tracker.track(result)
    for _ in range(50):
        with pytest.raises(TimeoutError):
            await tracker.wait(result, Status.READ, timeout=0.001)
    assert tracker._messages[("gowa", "3EB0POLL")].waiters == []
