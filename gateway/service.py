"""The gateway process: adapters → state machines → outbox/MQTT, plus health and ``cmd``.

How this works (asyncio; the thin shell around pure parts):

- one **poll task per device** reads its adapter every ``poll_s`` and steps
  that device's state machine (``occupancy.statemachine``, kept by
  ``gateway.devices.DeviceMachines``) with the scores; a camera's reading is
  one frame's per-space probabilities, debounced by the same machine;
  a failed read is counted in the device's health and changes nothing else,
  so a dead device never stops the others;
- one **listen task per push source** (``chirpstack``: LoRaWAN sensors
  through the network server's MQTT integration) hands the readings of its
  sensors to ``_pushed``: each sensor is a device with a state machine and
  health of its own, so debounce, staleness, heartbeats and the outbox are
  the same as for a polled device. A reading that says nothing about
  occupancy (a join, a device status, a startup frame) only updates the
  device's health;
- a **ticker** steps every machine with ``Tick(now)`` every ``tick_s``:
  silent spaces expire to ``unknown``, heartbeats go out at their period;
- one **writer** takes what the machines produced, in order, and stores it
  with ``GatewayNode.observe_many`` (one outbox transaction, one fsync, in a
  worker thread); the node's sender publishes it and deletes it on PUBACK;
- a **health task** publishes ``health`` (``occupancy.health``) every
  ``health_s``, and at once after a ``cmd`` was applied;
- ``cmd`` messages (retained, delivered again on every connect) arrive on
  paho's thread and are handed to the loop; the service applies the new
  periods to every machine and reports the version in ``health``.

Time: every input is stamped by the service's clock, never earlier than the
previous stamp, so each machine sees time move forward (its contract). A
pushed reading keeps its own time (a LoRaWAN uplink's: when the network
server received it) clamped into [the machine's clock, the service's now]:
never earlier than what the machine already saw (the ticker moves that
clock every ``tick_s``, so a reading delivered late is stamped at most
``tick_s`` before its arrival), never in the future.
``run`` returns when ``stop`` is set (SIGTERM): the pollers stop, what the
machines produced is stored, the node flushes for ``flush_timeout`` seconds
and stops; what was not acknowledged stays in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway import GatewayError
from gateway.adapters import Adapter, AdapterError, PushSource, build_adapter, build_source
from gateway.config import ChirpstackDevice, GatewayConfig
from gateway.devices import DeviceMachines, EventDraft
from gateway.node import GatewayNode, NodeStats
from occupancy.health import (
    Command,
    DeviceHealth,
    GatewayHealth,
    LorawanCounts,
    OutboxHealth,
    decode_command,
    encode_health,
)
from occupancy.ids import DeviceId, SpaceRef
from occupancy.lorawan.receiver import SensorReading
from occupancy.model import EventKind, Source, SpaceState
from occupancy.wire import WireError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_SOURCES = {"modbus": Source.SENSOR, "simulated": Source.SIMULATOR, "camera": Source.CAMERA}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeviceMonitor:
    """What the service knows of one device's health (owned by the event loop).

    A polled device has its ``adapter``; a pushed one (a LoRaWAN sensor) has
    none and keeps what its readings said (battery, radio, clock)."""

    kind: str
    spaces: tuple[SpaceRef, ...]
    adapter: Adapter | None = None
    poll_s: float = 1.0
    errors: int = 0
    consecutive_errors: int = 0
    last_error: str | None = None
    last_seen: datetime | None = None
    battery: float | None = None
    radio: SensorReading | None = None  # the last reading heard from a pushed device

    @classmethod
    def polled(cls, adapter: Adapter, poll_s: float) -> DeviceMonitor:
        return cls(adapter.kind, adapter.spaces, adapter, poll_s)


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """What a run produced (events, by kind) and the node's counters."""

    changes: int
    heartbeats: int
    read_errors: int
    config_version: str | None
    node: NodeStats


class GatewayService:
    """One gateway process; ``await run(stop)``. See the module docstring."""

    def __init__(self, config: GatewayConfig, *, adapters: Sequence[Adapter] | None = None,
                 sources: Sequence[PushSource] | None = None, clock: Clock = utc_now,
                 flush_timeout: float = 5.0) -> None:
        self.config = config
        self._clock = clock
        self._flush_timeout = flush_timeout
        pushed = [d for d in config.devices if isinstance(d, ChirpstackDevice)]
        made = adapters if adapters is not None else [
            build_adapter(config, d) for d in config.devices if not isinstance(d, ChirpstackDevice)]
        self._sources = list(sources) if sources is not None else [
            build_source(config, d) for d in pushed]
        polls = {d.id: d.poll_s for d in config.devices}
        self._devices = {a.device: DeviceMonitor.polled(a, polls.get(a.device, 1.0)) for a in made}
        self._policies = {d.id: config.policy(d) for d in config.devices}
        for src in self._sources:
            self._devices[src.device] = DeviceMonitor(src.kind, ())
            for sensor in src.sensors():
                self._devices[sensor.device] = DeviceMonitor(sensor.kind, sensor.spaces)
                self._policies[sensor.device] = self._policies.get(src.device) or \
                    config.policy(config.devices[0])
        self._machines = DeviceMachines()
        self._queue: asyncio.Queue[list[EventDraft]] = asyncio.Queue()
        self._last = datetime.min.replace(tzinfo=UTC)
        self._health_s = config.health_s
        self._health_now = asyncio.Event()
        self._version: str | None = None
        self._changes = self._heartbeats = 0
        self._started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.node = GatewayNode(
            config.tenant, config.gateway, config.outbox_path(), config.mqtt(), config.topic_prefix,
            client_id=config.client_id(), outbox_limit=config.outbox.max_events, tls=config.tls(),
            backoff=config.backoff(), reconnect_max_s=config.broker.reconnect_max_s,
            keepalive_s=config.broker.keepalive_s, on_command=self._command_arrived)

    # ---- running -------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> ServiceStats:
        """Run until ``stop`` is set; then store, flush and stop. Returns the counters."""
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        await asyncio.to_thread(self.node.start)
        for device, monitor in self._devices.items():
            self._add_machine(device, monitor)
        writer = asyncio.create_task(self._write(), name="gateway-writer")
        tasks = [asyncio.create_task(self._poll(m, m.adapter, stop), name=f"poll-{d}")
                 for d, m in self._devices.items() if m.adapter is not None]
        tasks += [asyncio.create_task(self._listen(src), name=f"listen-{src.device}")
                  for src in self._sources]
        tasks += [asyncio.create_task(self._tick(stop), name="gateway-ticker"),
                  asyncio.create_task(self._health(stop), name="gateway-health")]
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            await self._shutdown(tasks, writer)
        return self.stats()

    def stats(self) -> ServiceStats:
        return ServiceStats(self._changes, self._heartbeats,
                            sum(m.errors for m in self._devices.values()), self._version,
                            self.node.stats())

    async def _shutdown(self, tasks: list[asyncio.Task[None]], writer: asyncio.Task[None]) -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):  # everything the machines produced is stored
            await asyncio.wait_for(self._queue.join(), self._flush_timeout + 5)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        for m in self._devices.values():
            if m.adapter is not None:
                with contextlib.suppress(AdapterError, OSError):
                    await m.adapter.close()
        await asyncio.to_thread(self.node.stop, self._flush_timeout)

    def _add_machine(self, device: DeviceId, monitor: DeviceMonitor) -> None:
        if not monitor.spaces and monitor.adapter is None:
            return  # a push source's connection: its sensors have the machines
        policy = self._policies.get(device) or self.config.policy(self.config.devices[0])
        source = _SOURCES.get(monitor.kind, Source.SENSOR)
        self._machines.add(device, monitor.spaces, policy, source, device=device,
                           start=self._now())

    def _now(self) -> datetime:
        self._last = max(self._clock(), self._last)
        return self._last

    # ---- tasks ------------------------------------------------------------------

    async def _poll(self, monitor: DeviceMonitor, adapter: Adapter, stop: asyncio.Event) -> None:
        # not ``while True``: Python 3.11's wait_for loses a cancel that lands as
        # the read completes (it returns the result), and shutdown would wait forever
        while not stop.is_set():
            started = time.monotonic()
            try:
                scores = await asyncio.wait_for(adapter.read(), max(5.0, monitor.poll_s * 4))
            except (AdapterError, TimeoutError) as exc:
                self._read_failed(monitor, exc)
            else:
                if monitor.consecutive_errors:
                    log.info("device %s is back after %d failed reads", adapter.device,
                             monitor.consecutive_errors)
                monitor.consecutive_errors = 0
                at = self._now()
                monitor.last_seen = at
                if adapter.spaces != monitor.spaces:
                    self._respace(monitor, adapter)
                if scores:
                    self._enqueue(self._machines.observe(adapter.device, at, scores))
            await asyncio.sleep(max(0.0, monitor.poll_s - (time.monotonic() - started)))

    def _respace(self, monitor: DeviceMonitor, adapter: Adapter) -> None:
        """A device reads other spaces now (a camera's layout file changed): its machine
        watches the new ones too; those it no longer reads expire to ``unknown``."""
        monitor.spaces = tuple(dict.fromkeys((*monitor.spaces, *adapter.spaces)))
        self._machines.widen(adapter.device, adapter.spaces)

    def _read_failed(self, monitor: DeviceMonitor, exc: Exception) -> None:
        monitor.errors += 1
        monitor.consecutive_errors += 1
        monitor.last_error = str(exc) or type(exc).__name__
        if monitor.consecutive_errors == 1:
            log.warning("device %s: read failed: %s", monitor.adapter and monitor.adapter.device,
                        monitor.last_error)

    async def _listen(self, source: PushSource) -> None:
        """Run a push source; if it fails (it should not), say so and run it again."""
        while True:
            try:
                await source.run(self._pushed, self._now)
            except AdapterError as exc:
                log.error("%s %s stopped: %s (restarting in 5 s)", source.kind, source.device, exc)
                self._devices[source.device].last_error = str(exc)
                await asyncio.sleep(5.0)

    def _pushed(self, readings: Sequence[SensorReading]) -> None:
        """Readings of pushed devices (on the event loop): health, then the machines."""
        now = self._now()
        for r in readings:
            monitor = self._devices.get(r.device)
            if monitor is None:
                continue
            at = self._clamp(r.device, r.at, now)
            _note_reading(monitor, r, at)
            if r.occupied is not None and r.device in self._machines:
                scores = dict.fromkeys(monitor.spaces, 1.0 if r.occupied else 0.0)
                self._enqueue(self._machines.observe(r.device, at, scores))

    def _clamp(self, device: DeviceId, at: datetime, now: datetime) -> datetime:
        """Into [the device machine's clock, now]: a machine's time never goes backwards."""
        floor = self._machines.machine(device).now if device in self._machines else None
        return min(max(at, floor) if floor is not None else at, now)

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._enqueue(self._machines.tick(self._now()))
            await asyncio.sleep(self.config.tick_s)

    def _enqueue(self, drafts: list[EventDraft]) -> None:
        if drafts:
            self._queue.put_nowait(drafts)

    async def _write(self) -> None:
        while True:
            drafts = await self._queue.get()
            batches = 1
            while not self._queue.empty():
                drafts += self._queue.get_nowait()
                batches += 1
            await self._store(drafts)
            for _ in range(batches):
                self._queue.task_done()

    async def _store(self, drafts: list[EventDraft]) -> None:
        """Into the outbox; a failing disk is retried every second, nothing is dropped."""
        while True:
            try:
                await asyncio.to_thread(self.node.observe_many, drafts)
                break
            except GatewayError as exc:
                log.error("gateway %s: cannot store %d events (retrying): %s",
                          self.config.gateway, len(drafts), exc)
                await asyncio.sleep(1.0)
        beats = sum(1 for d in drafts if d.kind is EventKind.HEARTBEAT)
        self._heartbeats += beats
        self._changes += len(drafts) - beats

    async def _health(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._health_now.wait(), self._health_s)
            self._health_now.clear()
            payload = encode_health(self.health())
            await asyncio.to_thread(self.node.publish_health, payload)

    # ---- health and cmd ---------------------------------------------------------

    def health(self) -> GatewayHealth:
        """The ``health`` payload as of now."""
        node = self.node.stats()
        limit = self.node.outbox_limit or 0
        devices = tuple(self._device_health(d, m) for d, m in self._devices.items())
        return GatewayHealth(
            gateway=self.node.gateway, boot=node.boot, at=self._now(),
            uptime_s=time.monotonic() - self._started, config_version=self._version,
            connected=node.connected,
            outbox=OutboxHealth(node.depth, limit, node.dropped_heartbeats, node.dropped_changes),
            connects=node.connects, reconnect_attempts=node.reconnect_attempts, devices=devices,
            lorawan=self.lorawan_counts())

    @property
    def sources(self) -> tuple[PushSource, ...]:
        return tuple(self._sources)

    def lorawan_counts(self) -> LorawanCounts | None:
        """The counters of every ChirpStack connection, summed; None without one."""
        if not self._sources:
            return None
        return sum((s.counts() for s in self._sources), LorawanCounts())

    def _device_health(self, device: DeviceId, m: DeviceMonitor) -> DeviceHealth:
        tracks = self._machines.machine(device).tracks.values() if device in self._machines else ()
        unknown = sum(1 for t in tracks if t.state is SpaceState.UNKNOWN)
        source = next((s for s in self._sources if s.device == device), None)
        if source is not None:  # a push source's connection: ok while connected
            return DeviceHealth(
                id=device, kind=m.kind, ok=source.connected, last_seen=m.last_seen,
                errors=source.retries, consecutive_errors=0 if source.connected else 1,
                last_error=m.last_error, battery=None, spaces=0, unknown=0)
        return DeviceHealth(
            id=device, kind=m.kind, ok=m.consecutive_errors == 0 and m.last_seen is not None,
            last_seen=m.last_seen, errors=m.errors, consecutive_errors=m.consecutive_errors,
            last_error=m.last_error, battery=m.adapter.battery if m.adapter else m.battery,
            spaces=len(m.spaces), unknown=unknown, **_radio(m.radio),
            adapted=getattr(m.adapter, "adapted", None))

    def _command_arrived(self, payload: bytes) -> None:
        """On paho's thread: hand the payload to the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.apply_command, payload)

    def apply_command(self, payload: bytes) -> Command | None:
        """Apply a ``cmd`` payload; a bad one is logged and ignored."""
        try:
            cmd = decode_command(payload)
        except WireError as exc:
            log.warning("gateway %s: ignoring a bad cmd: %s", self.config.gateway, exc)
            return None
        self._machines.retune(cmd.heartbeat_s, cmd.stale_after_s)
        self._health_s = cmd.health_s or self._health_s
        self._version = cmd.version
        log.info("gateway %s: applied config version %s", self.config.gateway, cmd.version)
        self._health_now.set()
        return cmd



def _radio(r: SensorReading | None) -> dict[str, Any]:
    """The LoRaWAN keys of a device's health, from its last uplink."""
    if r is None:
        return {}
    return {"temperature_c": r.temperature_c, "rssi_dbm": r.rssi_dbm, "snr_db": r.snr_db,
            "f_cnt": r.f_cnt, "clock": r.clock}


def _note_reading(m: DeviceMonitor, r: SensorReading, at: datetime) -> None:
    """What a pushed reading tells of its device's health (battery, radio, errors)."""
    if r.error is not None:
        m.errors += 1
        m.consecutive_errors += 1
        m.last_error = r.error
    elif r.heard:
        m.consecutive_errors = 0
    if not r.heard:
        return
    m.last_seen = at if m.last_seen is None else max(m.last_seen, at)
    if r.battery_pct is not None:
        m.battery = r.battery_pct
    if r.event == "up":  # radio and clock come with uplinks; keep a frame's temperature
        old = m.radio
        keep = old.temperature_c if old is not None and r.temperature_c is None else r.temperature_c
        m.radio = replace(r, temperature_c=keep)
