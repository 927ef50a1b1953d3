"""The planner under attack: it never raises, a failure costs one message, and
only events inside the window (retention … now + max_skew) become rows."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.plan import Received, plan_batch
from ingest.registry import GatewayEntry, Registry
from ingest.store import by_days, event_days
from occupancy.ids import SpaceRef
from tests.support.payloads import mutate

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PREFIX = "parkbazaar/v1"
EVENTS = f"{PREFIX}/shiraz/gw1/events"
REG = Registry({("shiraz", "gw1"): GatewayEntry(7, {SpaceRef.parse("lot/A-1"): 101,
                                                   SpaceRef.parse("lot/A-2"): 102})})


def _payload(*events: tuple[int, str, datetime]) -> bytes:
    return json.dumps({"v": 1, "gateway": "gw1", "boot": 3, "events": [
        {"seq": s, "space": sp, "state": "free", "at": at.isoformat()} for s, sp, at in events
    ]}).encode()


VALID = _payload((1, "lot/A-1", NOW - timedelta(minutes=1)), (2, "lot/A-2", NOW))
STATUS = b'{"v":1,"online":true,"boot":3,"at":"2026-11-26T10:00:00Z"}'
topics = st.sampled_from([EVENTS, f"{PREFIX}/shiraz/gw1/status", f"{PREFIX}/shiraz/ghost/events",
                          f"{PREFIX}/Shiraz/gw1/events", "elsewhere", f"{PREFIX}/shiraz/gw1/health"])


def _plan(*msgs: Received, max_age: timedelta | None = timedelta(days=400)):  # type: ignore[no-untyped-def]
    return plan_batch(msgs, registry=REG, now=NOW, prefix=PREFIX,
                      max_skew=timedelta(minutes=5), max_age=max_age)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(topics, st.sampled_from([VALID, STATUS]) | st.binary(max_size=200),
                          st.randoms(use_true_random=False)), max_size=8))
def test_plan_batch_never_raises_and_acks_every_message(
        msgs: list[tuple[str, bytes, random.Random]]) -> None:
    received = [Received(t, mutate(p, rng, 2), handle=i) for i, (t, p, rng) in enumerate(msgs)]
    plan = _plan(*received)
    assert plan.acks == list(range(len(received)))
    assert len(plan.dead) <= len(received)
    assert all(NOW - timedelta(days=400) < r[0] <= NOW + timedelta(minutes=5) for r in plan.rows)


class _Exploding(Registry):
    """A registry whose lookup fails for one tenant: stands in for any bug in planning."""

    def gateway(self, tenant: str, gateway: str) -> GatewayEntry | None:
        if tenant == "boom":
            raise RuntimeError("lookup exploded")
        return super().gateway(tenant, gateway)


def test_unexpected_exception_in_planning_dead_letters_only_that_message() -> None:
    registry = _Exploding(REG.gateways)
    msgs = [Received(EVENTS, VALID, "a"), Received(f"{PREFIX}/boom/gw1/events", VALID, "b"),
            Received(EVENTS, _payload((3, "lot/A-1", NOW)), "c")]
    plan = plan_batch(msgs, registry=registry, now=NOW, prefix=PREFIX, max_skew=timedelta(minutes=5))
    assert plan.acks == ["a", "b", "c"]
    (dead,) = plan.dead
    assert (dead.reason, dead.topic) == ("internal", f"{PREFIX}/boom/gw1/events")
    assert dead.detail == {"error": "RuntimeError: lookup exploded"}
    assert sorted(r[2] for r in plan.rows) == [1, 2, 3]


def test_1970_event_beside_current_one_is_too_old_and_makes_no_partition_day() -> None:
    raw = _payload((1, "lot/A-1", datetime(2000, 1, 2, tzinfo=UTC)), (2, "lot/A-1", NOW))
    plan = _plan(Received(EVENTS, raw))
    assert [r[2] for r in plan.rows] == [2]
    assert event_days(plan.rows) == {NOW.date()}
    (dead,) = plan.dead
    assert dead.reason == "too_old" and dead.detail["rejected"][0]["reason"] == "too_old"


def test_window_edges_retention_and_max_skew() -> None:
    edge_old, edge_new = NOW - timedelta(days=400), NOW + timedelta(minutes=5)
    raw = _payload((1, "lot/A-1", edge_old), (2, "lot/A-1", edge_old + timedelta(seconds=1)),
                   (3, "lot/A-2", edge_new), (4, "lot/A-2", edge_new + timedelta(seconds=1)))
    plan = _plan(Received(EVENTS, raw))
    assert [r[2] for r in plan.rows] == [2, 3]
    assert [x["reason"] for x in plan.dead[0].detail["rejected"]] == ["too_old", "future_timestamp"]
    unbounded = _plan(Received(EVENTS, raw), max_age=None)
    assert [r[2] for r in unbounded.rows] == [1, 2, 3]


def test_dead_letter_detail_is_bounded() -> None:
    many = [(i, "lot/B-9", NOW) for i in range(1, 1001)]
    (dead,) = _plan(Received(EVENTS, _payload(*many))).dead
    assert dead.detail["rejected_count"] == 1000 and len(dead.detail["rejected"]) == 100


def test_400_days_in_one_message_are_written_16_days_a_transaction_statuses_last() -> None:
    days = [(i + 1, "lot/A-1", NOW - timedelta(days=i)) for i in range(399)]
    plan = _plan(Received(EVENTS, _payload(*days)), Received(EVENTS, b"junk"),
                 Received(f"{PREFIX}/shiraz/gw1/status", STATUS))
    parts = by_days(plan)
    assert len(parts) == 25 and all(len(d) <= 16 for _p, d in parts)
    assert sorted(r for p, _d in parts for r in p.rows) == sorted(plan.rows)
    assert all(event_days(p.rows) == d for p, d in parts)
    *first, (last, _days) = parts
    assert not any(p.statuses or p.dead for p, _d in first)
    assert (last.statuses, last.dead) == (plan.statuses, plan.dead) and len(last.dead) == 1
    small = _plan(Received(EVENTS, VALID))
    assert by_days(small) == [(small, {NOW.date()})]  # the usual batch: one transaction
