"""Simulated LoRaWAN sensors: the ChirpStack v4 events their uplinks become (pure).

How this works: ``LorawanFleet`` holds one ``LoraDevice`` per space a
scenario's ``lorawan`` entries name (``simulators.scenario.LorawanSpec``) and
a small radio state per device (session address, frame counter, the
occupancy it last sent, its next heartbeat, an uplink held back). The
engine calls ``step(prev_s, now_s, says)`` once per tick with what each
bay's sensor says at the end of the tick (the truth through the faults:
``None`` while it is silent); the fleet answers with the ``Publication``\\s
ChirpStack's MQTT integration would make of it during the tick, in the order
they are to be published:

- a **status** uplink when the sensor's occupancy differs from what it last
  sent (every device's first at the start), stamped with the tick's time
  (the truth's), and a **heartbeat** every ``heartbeat_s`` (a per-device
  phase, so not all at once) restating what it last sent;
- each uplink's ``data`` is the real frame: the model's own encoder
  (``occupancy.lorawan.models.encode``) from a ``Reading``; battery drains a
  little per frame, the temperature follows the day;
- it is heard by 1..``receivers`` LoRaWAN gateways (one ``rxInfo`` entry
  each, RSSI/SNR around a per-link level); with ``duplicate_share`` an uplink
  is published once per receiving gateway (the same ``deduplicationId`` and
  ``fCnt``, at least twice), the extra copies after the tick's other
  uplinks, so a copy can also arrive after the device's next uplink;
- with ``late_share`` an uplink is held back and published right after the
  device's next one (an older ``fCnt`` after a newer one). The receiver must
  drop it; meanwhile the chain cannot know what it said, so the fleet
  excuses the space in the truth from the held uplink's time until one tick
  after it is published;
- at each ``rejoin`` offset every device of the entry sends a **join** event
  (a new ``devAddr``, ``fCnt`` from 0), a **status** event (battery, link
  margin) and an uplink restating its occupancy; a held uplink is published
  before the join.

Everything is drawn from one ``random.Random`` per device seeded from the
scenario's seed and the DevEUI, in a fixed order, so the same scenario gives
the same events byte for byte. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from occupancy.lorawan import LorawanError
from occupancy.lorawan.chirpstack import event_topic
from occupancy.lorawan.frames import FrameKind, Reading
from occupancy.lorawan.models import decode, encode
from occupancy.model import SpaceState
from occupancy.wire import format_time
from simulators import SimulationError
from simulators.models import hash_seed
from simulators.scenario import LorawanSpec, Scenario
from simulators.truth import FaultEntry, SpaceKey, Truth

if TYPE_CHECKING:
    from simulators.engine import Target

# EU868's default channels; the data rate follows the spreading factor (DR = 12 - SF).
_CHANNELS = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000,
             867_700_000, 867_900_000)
_TENANT_ID = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"  # one simulated ChirpStack tenant
_NAMESPACE = uuid.UUID("6f3a2d4e-5b1c-4e8a-9d7f-0c1b2a3d4e5f")  # our uuid5 namespace


@dataclass(frozen=True, slots=True)
class LoraDevice:
    """A simulated LoRaWAN bay sensor: its DevEUI, model, space and ChirpStack application."""

    dev_eui: str
    device: str  # the id its gateway's events name
    model: str
    space: SpaceKey
    spec: LorawanSpec
    application_id: str
    gateway: tuple[str, str]  # (tenant, gateway) of the site: the one whose receiver binds it


@dataclass(frozen=True, slots=True)
class Publication:
    """One ChirpStack integration event to publish: ``up``, ``join`` or ``status``."""

    event: str
    dev_eui: str
    application_id: str
    at: datetime  # the event's own ``time`` (stamped)
    body: dict[str, Any]
    duplicate: bool = False  # an extra copy of an uplink already published
    late: bool = False  # published after a newer uplink of the same device

    def topic(self, root: str = "") -> str:
        """ChirpStack's default event topic, under ``root`` when one is given."""
        return event_topic(self.application_id, self.dev_eui, self.event,
                           f"{root}/application" if root else "application")

    def payload(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def default_application_id(name: str, seed: int, gateway: str) -> str:
    """A ChirpStack-like application UUID per scenario and gateway (stable for name and seed)."""
    return str(uuid.uuid5(_NAMESPACE, f"{name}/{seed}/{gateway}"))


def derived_dev_eui(space: SpaceKey) -> str:
    """A stable DevEUI for a space that the site file gives none."""
    return hashlib.sha256("/".join(space).encode()).hexdigest()[:16]


def devices_for(scenario: Scenario, targets: Sequence[Target]) -> list[LoraDevice]:
    """The LoRaWAN devices of a scenario's ``lorawan`` entries, one per space.

    A space's DevEUI and device id are the site file's when a ``kind: lorawan``
    device there binds that space alone, else derived from the space."""
    out: dict[SpaceKey, LoraDevice] = {}
    for n, spec in enumerate(scenario.lorawan):
        where = f"lorawan[{n}]"
        target = next((t for t in targets if t.site.id == spec.site), None)
        if target is None:
            raise SimulationError(f"{where}: site {spec.site!r} is not simulated")
        app = spec.application_id or default_application_id(scenario.name, scenario.seed,
                                                             target.gateway)
        for space in _spaces(spec, target, where):
            key = (target.tenant, target.site.id, space)
            if key in out:
                raise SimulationError(f"{where}: space {spec.site}/{space} is in two lorawan entries")
            dev_eui, device = _site_file_device(target, space)
            out[key] = LoraDevice(dev_eui, device, spec.model, key, spec, app, target.gw)
    return list(out.values())


def _spaces(spec: LorawanSpec, target: Target, where: str) -> list[str]:
    bound = [str(s) for s in target.spaces]
    if spec.spaces is not None:
        unknown = [s for s in spec.spaces if s not in bound]
        if unknown:
            raise SimulationError(f"{where}: spaces not bound to {target.gateway}: {unknown[:5]}")
        return list(spec.spaces)
    if spec.zone is None:
        return bound
    zone = next((z for z in target.site.zones if z.id == spec.zone), None)
    if zone is None:
        raise SimulationError(f"{where}: site {spec.site} has no zone {spec.zone!r}")
    ids = {str(s) for s in zone.space_ids()}
    return [s for s in bound if s in ids]


def _site_file_device(target: Target, space: str) -> tuple[str, str]:
    for dev in target.site.devices:
        if dev.kind == "lorawan" and dev.dev_eui and list(dev.spaces) == [space]:
            return dev.dev_eui.lower(), dev.id
    dev_eui = derived_dev_eui((target.tenant, target.site.id, space))
    return dev_eui, dev_eui


@dataclass
class _Radio:
    """The state of one device's radio (mutable; owned by the fleet)."""

    rng: random.Random
    links: list[tuple[str, float]]  # (gateway id, mean RSSI) of the gateways in range
    sf: int
    dev_addr: str = ""
    fcnt: int = 0
    said: bool | None = None
    next_hb_s: float = 0.0
    held: list[Publication] = field(default_factory=list)  # an uplink held back, its copies
    held_s: float = 0.0  # when it was sent
    battery: float = 100.0
    changes: int = 0


@dataclass(frozen=True, slots=True)
class _Out:
    """A publication with its place in the tick: publish time, device order, sequence."""

    publish_s: float
    device: int
    seq: int
    pub: Publication


class LorawanFleet:
    """See the module docstring."""

    def __init__(self, devices: Sequence[LoraDevice], *, seed: int, start: datetime,
                 tick: timedelta, shift: timedelta, truth: Truth) -> None:
        self.devices = list(devices)
        self.start, self.tick, self.shift, self.truth = start, tick, shift, truth
        self.seed = seed
        self._radios = [self._radio(d) for d in self.devices]
        self._seq = 0
        self.published = {"up": 0, "join": 0, "status": 0, "duplicate": 0, "late": 0}
        for model in {d.model for d in self.devices}:
            _check_model(model)
        self._log_rejoins()

    def _log_rejoins(self) -> None:
        """Each entry's rejoins in the truth's fault log (the report shades them)."""
        specs: dict[int, tuple[LorawanSpec, int]] = {}
        for d in self.devices:
            spec, n = specs.get(id(d.spec), (d.spec, 0))
            specs[id(d.spec)] = (spec, n + 1)
        for spec, n in specs.values():
            for r in spec.rejoin_offsets():
                self.truth.faults.append(FaultEntry(self.stamp(r), None, "lorawan_rejoin",
                                                    f"{spec.site}/{spec.zone or 'spaces'}",
                                                    f"{n} {spec.model} devices"))

    def _radio(self, d: LoraDevice) -> _Radio:
        rng = random.Random(hash_seed(self.seed, f"lorawan/{d.dev_eui}"))
        gateways = receiver_ids(self.seed, d.spec)
        links = [(g, rng.uniform(-118.0, -70.0)) for g in gateways]
        radio = _Radio(rng, links, sf=rng.choice((7, 7, 8, 9, 10, 11, 12)))
        radio.next_hb_s = float(rng.randrange(1, d.spec.heartbeat_s))
        radio.battery = rng.uniform(70.0, 100.0)
        radio.fcnt = rng.randrange(0, 5000)  # a session running for a while already
        radio.dev_addr = _dev_addr(rng)
        return radio

    def stamp(self, offset_s: float) -> datetime:
        return self.start + self.shift + timedelta(seconds=offset_s)

    # ---- one tick ----------------------------------------------------------------

    def step(self, prev_s: float | None, now_s: float,
             says: Callable[[SpaceKey], SpaceState | None], *, final: bool = False) -> list[Publication]:
        """What is published during the tick ``(prev_s, now_s]`` (offsets from start; the
        first tick has ``prev_s=None``); ``final`` publishes what is still held back."""
        outs: list[_Out] = []
        extra: list[_Out] = []
        for i, (d, radio) in enumerate(zip(self.devices, self._radios, strict=True)):
            emit = _Emitter(self, i, d, radio, outs, extra)
            emit.tick(prev_s, now_s, says(d.space))
            if final and radio.held:
                emit.lose(now_s)
        ordered = sorted(outs, key=lambda o: (o.publish_s, o.device, o.seq)) + extra
        for o in ordered:
            key = "duplicate" if o.pub.duplicate else "late" if o.pub.late else o.pub.event
            self.published[key] += 1
        return [o.pub for o in ordered]

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def excuse(self, d: LoraDevice, held_s: float, released_s: float) -> None:
        """The chain cannot know what a held uplink said until it is replaced or published."""
        self.truth.excused[d.space].append((self.stamp(held_s), self.stamp(released_s) + self.tick))


class _Emitter:
    """What one device sends in one tick (a helper of ``LorawanFleet.step``)."""

    def __init__(self, fleet: LorawanFleet, index: int, d: LoraDevice, radio: _Radio,
                 outs: list[_Out], extra: list[_Out]) -> None:
        self.fleet, self.index, self.d, self.radio = fleet, index, d, radio
        self.outs, self.extra = outs, extra

    def tick(self, prev_s: float | None, now_s: float, state: SpaceState | None) -> None:
        """Heartbeats and rejoins inside the tick in time order (they restate what was last
        sent: a bay changes at the tick's end), then a change, then a heartbeat due now."""
        radio, spec = self.radio, self.d.spec
        silent = state is None or state is SpaceState.UNKNOWN
        rejoins = [float(r) for r in spec.rejoin_offsets() if prev_s is not None and prev_s < r <= now_s]
        while rejoins or radio.next_hb_s < now_s:
            if rejoins and (radio.next_hb_s >= now_s or rejoins[0] <= radio.next_hb_s):
                at_s = rejoins.pop(0)
                occupied = (state is SpaceState.OCCUPIED) if at_s == now_s else radio.said
                self.rejoin(at_s, None if silent else occupied)
                continue
            if not silent and prev_s is not None and radio.next_hb_s > prev_s and radio.said is not None:
                self.uplink(radio.next_hb_s, FrameKind.HEARTBEAT, radio.said)
            radio.next_hb_s += spec.heartbeat_s
        if silent:  # no word, and no heartbeat either
            radio.next_hb_s += spec.heartbeat_s if radio.next_hb_s <= now_s else 0
            return
        occupied = state is SpaceState.OCCUPIED
        if radio.said is None or occupied != radio.said:
            radio.changes += radio.said is not None
            self.uplink(now_s, FrameKind.STATUS, occupied, may_be_late=prev_s is not None)
        if radio.next_hb_s <= now_s:
            self.uplink(now_s, FrameKind.HEARTBEAT, occupied)
            radio.next_hb_s += spec.heartbeat_s

    def rejoin(self, at_s: float, occupied: bool | None) -> None:
        """A join (a new session), the device's status, then an uplink restating its occupancy
        (which overtakes an uplink held back from the old session)."""
        radio = self.radio
        radio.dev_addr, radio.fcnt = _dev_addr(radio.rng), 0
        self.put(at_s, Publication("join", self.d.dev_eui, self.d.application_id, self.fleet.stamp(at_s),
                                   self.join_body(at_s)))
        self.put(at_s, Publication("status", self.d.dev_eui, self.d.application_id,
                                   self.fleet.stamp(at_s), self.status_body(at_s)))
        if occupied is not None:
            radio.changes += radio.said is not None and radio.said != occupied
            self.uplink(at_s, FrameKind.STATUS, occupied, may_be_late=False)

    def uplink(self, at_s: float, kind: FrameKind, occupied: bool, *, may_be_late: bool = True) -> None:
        """One uplink: encoded, heard by some gateways, maybe duplicated, maybe held back."""
        radio, spec = self.radio, self.d.spec
        heard = radio.rng.sample(radio.links, radio.rng.randint(1, len(radio.links)))
        duplicated = radio.rng.random() < spec.duplicate_share
        late = radio.rng.random() < spec.late_share
        body = self.up_body(at_s, kind, occupied, heard)
        radio.said = occupied
        pub = Publication("up", self.d.dev_eui, self.d.application_id, self.fleet.stamp(at_s), body)
        copies = [pub]
        if duplicated:  # once per receiving gateway with its own rxInfo, at least twice
            rxs = body["rxInfo"]
            copies = ([replace(pub, body={**body, "rxInfo": [rx]}) for rx in rxs] if len(rxs) > 1
                      else [pub, pub])
            copies[1:] = [replace(c, duplicate=True) for c in copies[1:]]
        if late and may_be_late and not radio.held:
            radio.held, radio.held_s = [replace(c, late=True) for c in copies], at_s
            return
        self.put(at_s, copies[0])
        self.extra += [_Out(at_s, self.index, self.fleet.next_seq(), c) for c in copies[1:]]
        self.release(at_s)

    def release(self, at_s: float) -> None:
        """Publish what was held back, now (after the uplink that overtook it)."""
        radio = self.radio
        if not radio.held:
            return
        for p in radio.held:
            self.put(at_s, p)
        radio.held = []
        self.fleet.excuse(self.d, radio.held_s, at_s)

    def lose(self, now_s: float) -> None:
        """The run ends before anything overtook the held uplink: it never arrives."""
        self.radio.held = []
        self.fleet.excuse(self.d, self.radio.held_s, now_s)

    def put(self, at_s: float, pub: Publication) -> None:
        self.outs.append(_Out(at_s, self.index, self.fleet.next_seq(), pub))

    # ---- event bodies (ChirpStack v4, JSON marshaling) ---------------------------------

    def device_info(self) -> dict[str, Any]:
        d = self.d
        return {"tenantId": _TENANT_ID, "tenantName": "ChirpStack", "applicationId": d.application_id,
                "applicationName": "parkbazaar simulated sensors",
                "deviceProfileId": str(uuid.uuid5(_NAMESPACE, d.model)), "deviceProfileName": d.model,
                "deviceName": d.device, "devEui": d.dev_eui, "deviceClassEnabled": "CLASS_A",
                "tags": {"space": f"{d.space[1]}/{d.space[2]}"}}

    def head(self, at_s: float) -> dict[str, Any]:
        return {"deduplicationId": str(uuid.UUID(int=self.radio.rng.getrandbits(128), version=4)),
                "time": format_time(self.fleet.stamp(at_s)), "deviceInfo": self.device_info()}

    def up_body(self, at_s: float, kind: FrameKind, occupied: bool,
                heard: list[tuple[str, float]]) -> dict[str, Any]:
        radio, rng = self.radio, self.radio.rng
        radio.battery = max(5.0, radio.battery - 0.002)
        fport, payload = encode(self.d.model, Reading(
            kind=kind, occupied=occupied, battery_pct=round(radio.battery, 1),
            temperature_c=self.temperature(at_s), counter=radio.changes & 0xFFFF))
        body = self.head(at_s)
        body.update({"devAddr": radio.dev_addr, "adr": True, "dr": 12 - radio.sf,
                     **({"fCnt": radio.fcnt} if radio.fcnt else {}),  # protobuf JSON leaves out a 0
                     "fPort": fport, "confirmed": False, "data": base64.b64encode(payload).decode(),
                     "rxInfo": [self.rx(at_s, g, rssi) for g, rssi in heard],
                     "txInfo": {"frequency": rng.choice(_CHANNELS), "modulation": {"lora": {
                         "bandwidth": 125000, "spreadingFactor": radio.sf, "codeRate": "CR_4_5"}}}})
        radio.fcnt += 1
        return body

    def rx(self, at_s: float, gateway: str, rssi: float) -> dict[str, Any]:
        rng = self.radio.rng
        level = round(rssi + rng.gauss(0, 3))
        return {"gatewayId": gateway, "uplinkId": rng.randrange(1, 65536),
                "time": format_time(self.fleet.stamp(at_s)), "rssi": level,
                "snr": round(max(-20.0, min(12.0, (level + 120) / 4 + rng.gauss(0, 1.5))), 1),
                "channel": rng.randrange(0, 8), "rfChain": rng.randrange(0, 2), "location": {},
                "context": base64.b64encode(rng.getrandbits(32).to_bytes(4, "big")).decode(),
                "metadata": {"region_common_name": "EU868", "region_config_id": "eu868"},
                "crcStatus": "CRC_OK"}

    def join_body(self, at_s: float) -> dict[str, Any]:
        return {**self.head(at_s), "devAddr": self.radio.dev_addr}

    def status_body(self, at_s: float) -> dict[str, Any]:
        return {**self.head(at_s), "margin": self.radio.rng.randrange(0, 25), "externalPowerSource": False,
                "batteryLevelUnavailable": False, "batteryLevel": round(self.radio.battery, 1)}

    def temperature(self, at_s: float) -> float:
        """A daily curve (warmest mid-afternoon) around a per-device level."""
        local = self.fleet.start + timedelta(seconds=at_s)
        hour = local.hour + local.minute / 60
        return round(14 + 8 * math.sin((hour - 9) / 24 * 2 * math.pi) + self.radio.sf - 9, 1)


def receiver_ids(seed: int, spec: LorawanSpec) -> list[str]:
    """The LoRaWAN gateways (EUI-64, hex) in range of an entry's devices."""
    base = f"{seed}/{spec.site}/{spec.zone}/{spec.spaces}/{spec.model}"
    return [hashlib.sha256(f"{base}/{k}".encode()).hexdigest()[:16] for k in range(spec.receivers)]


def _dev_addr(rng: random.Random) -> str:
    return f"{0x26000000 | rng.getrandbits(25):08x}"  # a TTN-like NetID block


def _check_model(model: str) -> None:
    """The model's status and heartbeat frames must say occupancy, both ways round."""
    for kind in (FrameKind.STATUS, FrameKind.HEARTBEAT):
        for occupied in (False, True):
            try:
                fport, payload = encode(model, Reading(kind=kind, occupied=occupied))
                frame = decode(model, fport, payload)
            except LorawanError as exc:
                raise SimulationError(f"lorawan model {model}: cannot simulate its {kind} frames: "
                                      f"{exc}") from exc
            if frame.occupied is not occupied:
                raise SimulationError(f"lorawan model {model}: a {kind} frame for occupied={occupied} "
                                      f"decodes to occupied={frame.occupied}")
