"""The gateway node against a real Mosquitto: birth, events, outbox, last will."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.node import GatewayNode
from gateway.outbox import EventDraft, Outbox
from occupancy.config import MqttUrl
from occupancy.ids import SpaceRef
from occupancy.model import EventKind, Source, SpaceState
from occupancy.sitefile import parse_site_file
from occupancy.wire import decode_events
from simulators.runner import run_simulation
from stack.embedded import Mosquitto
from tests.support.mqtt import Subscriber
from tests.support.waiting import wait_until_sync

pytestmark = pytest.mark.mosquitto

TENANT, GW = "shiraz", "gw-test"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def subscribe(topic_prefix: str) -> Iterator[Callable[[str], Subscriber]]:
    made: list[Subscriber] = []

    def make(url: str) -> Subscriber:
        made.append(Subscriber(url, topic_prefix))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def persistent_broker(mosquitto_factory: Callable[..., Mosquitto]) -> Iterator[Mosquitto]:
    """A broker whose persistence works: mosquitto started as root drops to its own user,
    which cannot write under pytest's private tmp dirs, so the data dir must be open."""
    mosquitto_factory  # noqa: B018 - only to skip when mosquitto is missing
    root = Path(tempfile.mkdtemp(prefix="pb-mosquitto-"))
    root.chmod(0o777)
    data = root / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)
    broker = Mosquitto(data).start()
    try:
        yield broker
    finally:
        broker.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)


def drafts(n: int, offset: int = 0) -> list[EventDraft]:
    now = datetime.now(UTC)
    return [EventDraft(SpaceRef.parse(f"central-lot/A-{(offset + i) % 48 + 1:03d}"),
                       SpaceState.OCCUPIED if (offset + i) % 3 else SpaceState.FREE, now,
                       Source.SIMULATOR) for i in range(n)]


def node_for(url: str, prefix: str, outbox: Path, **kw: Any) -> GatewayNode:
    return GatewayNode(TENANT, GW, outbox, MqttUrl.parse(url), prefix,
                       client_id=f"gw-{prefix.split('/')[0]}", reconnect_max_s=1, **kw)


def test_birth_then_every_event_in_seq_order_then_offline(
        broker: Mosquitto, topic_prefix: str, tmp_path: Path,
        subscribe: Callable[[str], Subscriber]) -> None:
    node = node_for(broker.url, topic_prefix, tmp_path / "gw.sqlite")
    boot = node.start()
    assert node.wait_connected(5)
    sub = subscribe(broker.url)  # joins after the birth: gets it retained
    sub.wait(lambda: sub.statuses() == [(True, boot)])
    assert sub.messages[0][2] is True  # retained
    observed = [e.seq for e in node.observe_many(drafts(700))]
    observed.append(node.observe(SpaceRef.parse("central-lot/B-001"), SpaceState.FREE,
                                 datetime.now(UTC), Source.SENSOR).seq)
    assert node.flush(10)
    sub.wait(lambda: len(sub.seqs()) >= len(observed))
    assert sub.seqs() == observed == list(range(1, 702))
    batches = [decode_events(p) for t, p, _ in sub.messages if t.endswith("/events")]
    assert {b.boot for b in batches} == {boot}
    assert max(len(b.events) for b in batches) <= 200
    stats = node.stats()
    assert (stats.sent, stats.acked, stats.depth, stats.resent) == (701, 701, 0, 0)
    node.stop()
    sub.wait(lambda: sub.statuses()[-1] == (False, boot))


def test_restart_gives_next_boot_and_continues_seq(
        broker: Mosquitto, topic_prefix: str, tmp_path: Path,
        subscribe: Callable[[str], Subscriber]) -> None:
    sub = subscribe(broker.url)
    seqs = []
    for expected_boot in (1, 2, 3):
        node = node_for(broker.url, topic_prefix, tmp_path / "gw.sqlite")
        assert node.start() == expected_boot
        seqs += [e.seq for e in node.observe_many(drafts(5))]
        assert node.flush(10)
        node.stop()
    assert seqs == list(range(1, 16))
    sub.wait(lambda: sub.seqs() == seqs)
    sub.wait(lambda: sub.statuses() == [(True, 1), (False, 1), (True, 2), (False, 2),
                                        (True, 3), (False, 3)])


def test_events_observed_while_the_broker_is_down_arrive_after_it_returns(
        persistent_broker: Mosquitto, topic_prefix: str, tmp_path: Path,
        subscribe: Callable[[str], Subscriber]) -> None:
    broker = persistent_broker
    sub = subscribe(broker.url)
    node = node_for(broker.url, topic_prefix, tmp_path / "gw.sqlite")
    node.start()
    assert node.wait_connected(5)
    node.observe_many(drafts(20))
    assert node.flush(10)
    sub.wait(lambda: sub.seqs() == list(range(1, 21)))
    sub.pause()  # a clean offline session: the broker keeps it across its restart
    broker.stop()
    node.observe_many(drafts(300, offset=20))
    assert not node.flush(0.3)
    assert node.stats().depth == 300
    broker.start()
    assert node.flush(15)
    sub.resume()
    sub.wait(lambda: set(sub.seqs()) == set(range(1, 321)))
    node.stop()


NODE_SCRIPT = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from gateway.node import GatewayNode
    from gateway.outbox import EventDraft
    from occupancy.config import MqttUrl
    from occupancy.ids import SpaceRef
    from occupancy.model import SpaceState, Source
    url, prefix, outbox, client_id = sys.argv[1:5]
    node = GatewayNode("shiraz", "gw-test", outbox, MqttUrl.parse(url), prefix,
                       client_id=client_id, reconnect_max_s=1)
    print("boot", node.start(), node.wait_connected(5), flush=True)
    for line in sys.stdin:
        if line.startswith("sent"):
            print("sent", node.stats().sent, flush=True)
            continue
        n = int(line.split()[1])
        d = EventDraft(SpaceRef.parse("central-lot/C-001"), SpaceState.OCCUPIED,
                       datetime.now(UTC), Source.SIMULATOR)
        last = node.observe_many([d] * n)[-1].seq
        if line.startswith("flush"):
            node.flush(10)
        print("seq", last, node.stats().depth, flush=True)
""")


def _sent(proc: subprocess.Popen[str]) -> int:
    """How many events the node in ``proc`` (NODE_SCRIPT) has put on the wire."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("sent\n")
    proc.stdin.flush()
    return int(proc.stdout.readline().split()[1])


def test_killed_node_leaves_its_will_and_the_next_boot_resends_the_backlog(
        mosquitto_factory: Callable[..., Mosquitto], topic_prefix: str, tmp_path: Path,
        subscribe: Callable[[str], Subscriber]) -> None:
    broker = mosquitto_factory()
    assert broker.proc is not None
    sub = subscribe(broker.url)
    outbox, client_id = tmp_path / "gw.sqlite", f"gw-{topic_prefix.split('/')[0]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT, broker.url, topic_prefix, str(outbox), client_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().split() == ["boot", "1", "True"]
        proc.stdin.write("flush 50\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ["seq", "50", "0"]
        os.kill(broker.proc.pid, signal.SIGSTOP)  # no PUBACK from now on
        proc.stdin.write("observe 30\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split()[:2] == ["seq", "80"]
        wait_until_sync(lambda: _sent(proc) >= 80, 10, "the backlog on the wire, unacknowledged")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
        proc.kill()
    sub.wait(lambda: sub.statuses()[-2:] == [(True, 1), (False, 1)])
    with Outbox(outbox) as box:
        assert [e.seq for e in box.pending(100)] == list(range(51, 81))
    node = GatewayNode(TENANT, GW, outbox, MqttUrl.parse(broker.url), topic_prefix,
                       client_id=client_id, reconnect_max_s=1)
    assert node.start() == 2
    assert node.flush(10)
    assert node.observe_many(drafts(1))[0].seq == 81
    assert node.flush(10)
    sub.wait(lambda: set(sub.seqs()) == set(range(1, 82)))
    sub.wait(lambda: sub.statuses()[-1] == (True, 2))
    node.stop()
    sub.wait(lambda: sub.statuses()[-1] == (False, 2))


async def test_simulation_publishes_every_space_then_changes_then_heartbeats(
        broker: Mosquitto, topic_prefix: str, tmp_path: Path, examples_dir: Path,
        subscribe: Callable[[str], Subscriber]) -> None:
    site_file = parse_site_file(yaml.safe_load((examples_dir / "shiraz.yaml").read_text()))
    sub = subscribe(broker.url)
    started = datetime.now(UTC)
    stats = await run_simulation(
        site_file=site_file, site_id="central-lot", gateway_id="gw-central-lot",
        mqtt=MqttUrl.parse(broker.url), prefix=topic_prefix, state_dir=tmp_path,
        speed=3600.0, stop=asyncio.Event(), duration_s=1.5, seed=1, heartbeat_s=1.0,
        start_at=datetime(2026, 11, 26, 7, 0, tzinfo=ZoneInfo("Asia/Tehran")))
    assert stats.node.depth == 0
    assert stats.node.acked == stats.node.sent
    assert stats.changes > 128
    assert stats.heartbeats == 128  # the machine restates every space once a period (1 s of 1.5)
    total = stats.changes + stats.heartbeats
    sub.wait(lambda: len(sub.seqs()) >= total and sub.statuses()[-1:] == [(False, 1)])
    batches = [decode_events(p) for t, p, _ in sub.messages if t.endswith("/events")]
    events = [e for b in batches for e in b.events]
    first = events[:128]  # the first reading, through the gateway's state machine: changes
    assert {e.kind for e in first} == {EventKind.CHANGE}
    assert len({e.space for e in first}) == 128
    assert {e.kind for e in events[128:]} == {EventKind.CHANGE, EventKind.HEARTBEAT}
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert all(started <= e.at <= datetime.now(UTC) for e in events)  # wall clock, never ahead
