"""Netvox R719A surface parking sensor (``netvox-r719a``), pure decoder and encoder.

How this works. Netvox devices share one frame format, the "Netvox LoRaWAN
Application Command" of their user manuals; the R719A fills it in as below.
Every frame names the Netvox *device type* in its second byte (``0x59`` is
the R719A); a frame of any other type is refused, naming the type.

fPort 6 — reports, 11 bytes: ``Version`` (``0x01``), ``DeviceType``,
``ReportType``, then 8 bytes chosen by ``ReportType``:

==========  ==========================================================  =========
ReportType  payload                                                     kind
==========  ==========================================================  =========
``0x00``    version report, sent after power-on/join: SoftwareVersion    startup
            (tenths: ``0x0A`` is 1.0), HardwareVersion, DateCode (4
            bytes, BCD ``yyyymmdd``), 2 reserved
``0x01``    status: Battery (0.1 V units; bit 7 set = low battery),     status
            CarOnOff (``0x00`` free, ``0x01`` occupied), 6 reserved
==========  ==========================================================  =========

The status report is sent when CarOnOff changes and again every MaxTime
seconds; the frame does not say which, so every status report is ``status``.

fPort 7 — answers to configuration downlinks, 11 bytes: ``CmdID``,
``DeviceType``, then 9 bytes chosen by ``CmdID``:

========  ========================  ================================================
CmdID     name                      payload
========  ========================  ================================================
``0x81``  ConfigReportRsp           Status (``0x00`` success), 8 reserved
``0x82``  ReadConfigReportRsp       MinTime (2 bytes, s), MaxTime (2 bytes, s),
                                    BatteryChange (0.1 V units), 4 reserved
========  ========================  ================================================

Reserved trailing bytes are not required: a frame is long enough once it
holds the fields it documents. Multi-byte values are big-endian.

``encode`` makes the frames a device sends for a ``Reading``. The R719A reports
volts, not percent; the simulator's percent maps linearly onto 3.0..3.6 V
(its lithium cell's useful range) and sets the low-battery bit below 20 %
(a simulation choice, not a vendor figure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading, need

NAME = "netvox-r719a"
REFERENCE = ("Netvox R719A user manual and the Netvox LoRaWAN Application Command format "
             "(fPort 6 ReportDataCmd, fPort 7 ConfigureCmd); R719A codec in "
             "TheThingsNetwork/lorawan-devices vendor/netvox/payload/r719a.js")

PORT_REPORT = 6
PORT_CONFIG = 7
R719A = 0x59
# Netvox device types a frame may name, for the error message only.
DEVICE_TYPES: Mapping[int, str] = {0x59: "R719A", 0xAF: "R719B"}

REPORT_VERSION = 0x00
REPORT_STATUS = 0x01
CMD_CONFIG_RSP = 0x81
CMD_READ_CONFIG_RSP = 0x82

LOW_BATTERY_BIT = 0x80
FRAME_SIZE = 11  # every Netvox frame on ports 6 and 7 (reserved bytes included)

# What a body decoder finds: kind, occupied, battery volts, the other fields.
Decoded = tuple[FrameKind, bool | None, float | None, dict[str, Any]]
Body = Callable[[int, bytes], Decoded]


def _device_type(fport: int, payload: bytes) -> None:
    """``FrameError`` unless byte 1 names an R719A."""
    need(NAME, fport, payload, 2, "Netvox")
    kind = payload[1]
    if kind != R719A:
        seen = DEVICE_TYPES.get(kind, "not a known Netvox parking sensor")
        raise FrameError(f"{NAME}: fPort {fport}: device type 0x{kind:02X} ({seen}) is not an "
                         f"R719A (0x{R719A:02X})")


def _version_report(fport: int, payload: bytes) -> Decoded:
    need(NAME, fport, payload, 9, "version report")
    fields = {"software_version": payload[3] / 10, "hardware_version": payload[4],
              "date_code": payload[5:9].hex()}
    return FrameKind.STARTUP, None, None, fields


def _status_report(fport: int, payload: bytes) -> Decoded:
    need(NAME, fport, payload, 5, "status report")
    battery, car = payload[3], payload[4]
    if car > 1:
        raise FrameError(f"{NAME}: fPort {fport}: CarOnOff 0x{car:02X} is neither 0x00 nor 0x01")
    volts = (battery & ~LOW_BATTERY_BIT) / 10
    return FrameKind.STATUS, car == 1, volts, {"battery_low": bool(battery & LOW_BATTERY_BIT)}


def _config_rsp(fport: int, payload: bytes) -> Decoded:
    need(NAME, fport, payload, 3, "ConfigReportRsp")
    return FrameKind.CONFIG, None, None, {"command": "config_report_rsp",
                                          "success": payload[2] == 0x00, "status_code": payload[2]}


def _read_config_rsp(fport: int, payload: bytes) -> Decoded:
    need(NAME, fport, payload, 7, "ReadConfigReportRsp")
    fields = {"command": "read_config_report_rsp",
              "min_time_s": int.from_bytes(payload[2:4], "big"),
              "max_time_s": int.from_bytes(payload[4:6], "big"),
              "battery_change_v": payload[6] / 10}
    return FrameKind.CONFIG, None, None, fields


# ReportType (fPort 6, byte 2) and CmdID (fPort 7, byte 0) -> the decoder of the body
REPORTS: Mapping[int, Body] = {REPORT_VERSION: _version_report, REPORT_STATUS: _status_report}
COMMANDS: Mapping[int, Body] = {CMD_CONFIG_RSP: _config_rsp, CMD_READ_CONFIG_RSP: _read_config_rsp}


def _body(fport: int, payload: bytes) -> Body:
    """The body decoder the frame's ReportType (fPort 6) or CmdID (fPort 7) selects."""
    if fport == PORT_REPORT:
        need(NAME, fport, payload, 3, "report")
        body = REPORTS.get(payload[2])
        if body is None:
            raise FrameError(f"{NAME}: fPort {fport}: unknown report type 0x{payload[2]:02X} "
                             f"(known: 0x00 version, 0x01 status)")
        return body
    if fport == PORT_CONFIG:
        need(NAME, fport, payload, 1, "configuration")
        body = COMMANDS.get(payload[0])
        if body is None:
            raise FrameError(f"{NAME}: fPort {fport}: unknown command 0x{payload[0]:02X} "
                             f"(known: 0x81 ConfigReportRsp, 0x82 ReadConfigReportRsp)")
        return body
    raise FrameError(f"{NAME}: fPort {fport} is not one of this model's ports (6, 7)")


def decode(fport: int, payload: bytes) -> Frame:
    """The ``Frame`` one R719A uplink says; ``FrameError`` for anything else."""
    if fport in (PORT_REPORT, PORT_CONFIG):
        _device_type(fport, payload)
    body = _body(fport, payload)
    kind, occupied, volts, fields = body(fport, payload)
    return Frame(model=NAME, fport=fport, kind=kind, occupied=occupied, battery_v=volts, fields=fields)


def _battery_byte(pct: float | None) -> int:
    """The Battery byte for a percent: 3.0..3.6 V in 0.1 V units, bit 7 below 20 %."""
    if pct is None:
        return 36
    pct = min(max(pct, 0.0), 100.0)
    byte = round(30 + 6 * pct / 100)
    return byte | LOW_BATTERY_BIT if pct < 20 else byte


def _frame(first: int, third: int, rest: bytes) -> bytes:
    return (bytes([first, R719A, third]) + rest).ljust(FRAME_SIZE, b"\x00")


def encode(reading: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` an R719A sends for ``reading``.

    ``status`` and ``heartbeat`` give a status report (the R719A's periodic
    report is the same frame), ``startup`` a version report (firmware 1.0,
    hardware 1), ``config`` a ReadConfigReportRsp (60 s / 3600 s / 0.1 V).
    """
    kind = reading.kind
    if kind in (FrameKind.STATUS, FrameKind.HEARTBEAT):
        body = bytes([_battery_byte(reading.battery_pct), int(reading.occupied)])
        return PORT_REPORT, _frame(0x01, REPORT_STATUS, body)
    if kind is FrameKind.STARTUP:
        return PORT_REPORT, _frame(0x01, REPORT_VERSION, bytes.fromhex("0a0120240101"))
    if kind is FrameKind.CONFIG:
        return PORT_CONFIG, bytes([CMD_READ_CONFIG_RSP, R719A]) + bytes.fromhex("003c0e1001") + bytes(4)
    raise FrameError(f"{NAME}: sends no {kind.value} frame (it sends status, heartbeat, startup, config)")


MODELS: tuple[Model, ...] = (
    Model(name=NAME, vendor="Netvox", description="R719A surface-mounted parking sensor",
          ports=frozenset({PORT_REPORT, PORT_CONFIG}), decode=decode, encode=encode,
          reference=REFERENCE),
)
