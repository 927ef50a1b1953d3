"""The pure ingest planner: what each message writes, and that all are acked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.plan import Received, plan_batch
from ingest.registry import GatewayEntry, Registry
from occupancy.ids import SpaceRef
from occupancy.validate import check_batch
from occupancy.wire import Reason, Status, decode_events, encode_status

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PREFIX = "parkbazaar/v1"
REG = Registry({("shiraz", "gw1"): GatewayEntry(7, {SpaceRef.parse("lot/A-1"): 101,
                                                   SpaceRef.parse("lot/A-2"): 102})})


def _events(*items: tuple[int, str, str]) -> bytes:
    evs = ",".join(f'{{"seq":{s},"space":"{sp}","state":"free","at":"{at}"}}' for s, sp, at in items)
    return f'{{"v":1,"gateway":"gw1","boot":1,"events":[{evs}]}}'.encode()


def _plan(*msgs: Received):  # type: ignore[no-untyped-def]
    return plan_batch(msgs, registry=REG, now=NOW, prefix=PREFIX, max_skew=timedelta(minutes=5))


def test_valid_events_become_rows_with_database_ids() -> None:
    plan = _plan(Received("parkbazaar/v1/shiraz/gw1/events",
                          _events((1, "lot/A-1", "2026-11-26T09:59:00Z")), handle="h1"))
    assert plan.rows == [(NOW - timedelta(minutes=1), 7, 1, 101, "free", "sensor", "change", None, None)]
    assert plan.dead == [] and plan.acks == ["h1"]


def test_every_message_is_acknowledged_even_the_bad_ones() -> None:
    plan = _plan(Received("nonsense", b"x", "a"), Received("parkbazaar/v1/shiraz/gw1/events", b"{", "b"),
                 Received("parkbazaar/v1/shiraz/ghost/events", _events((1, "lot/A-1", "2026-11-26T09:00:00Z"))
                          .replace(b"gw1", b"ghost"), "c"))
    assert plan.acks == ["a", "b", "c"]
    assert [d.reason for d in plan.dead] == ["bad_topic", "malformed_json", "unknown_gateway"]
    assert plan.misses_registry()


def test_partly_bad_batch_keeps_good_events_and_dead_letters_the_message() -> None:
    raw = _events((1, "lot/A-1", "2026-11-26T09:00:00Z"), (2, "lot/B-9", "2026-11-26T09:00:00Z"),
                  (3, "lot/A-2", "2026-11-27T09:00:00Z"))
    plan = _plan(Received("parkbazaar/v1/shiraz/gw1/events", raw))
    assert [r[2] for r in plan.rows] == [1]
    (dead,) = plan.dead
    assert dead.payload == raw and dead.reason == "space_not_bound"
    assert [x["reason"] for x in dead.detail["rejected"]] == ["space_not_bound", "future_timestamp"]


def test_status_messages_update_gateways_and_empty_retained_is_ignored() -> None:
    t = "parkbazaar/v1/shiraz/gw1/status"
    plan = _plan(Received(t, encode_status(Status(False, 3))), Received(t, b""))
    assert [(s.gateway_id, s.online, s.boot) for s in plan.statuses] == [(7, False, 3)]


def test_check_batch_allows_small_clock_skew() -> None:
    batch = decode_events(_events((1, "lot/A-1", "2026-11-26T10:04:00Z")))
    checked = check_batch(batch, bound={SpaceRef.parse("lot/A-1")}, now=NOW)
    assert len(checked.accepted) == 1
    late = check_batch(batch, bound={SpaceRef.parse("lot/A-1")}, now=NOW - timedelta(minutes=2))
    assert late.rejected[0][1] is Reason.FUTURE_TIMESTAMP
