"""A LoRaWAN device model for the tests only (``toy``), registered while a test runs.

Its frames: fPort 1, byte 0 is 1 (occupied) or 0 (free), byte 1 (optional) the battery in
percent. The vendor models are table-tested on their own; the receiver and the gateway
need only some model to decode with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading
from occupancy.lorawan.models import registry

TOY = "toy"


def toy_decode(fport: int, data: bytes) -> Frame:
    if not data or data[0] not in (0, 1):
        raise FrameError(f"{TOY}: fPort {fport}: want 0 or 1 in byte 0, got {data.hex() or 'nothing'}")
    battery = float(data[1]) if len(data) > 1 else None
    return Frame(TOY, fport, FrameKind.STATUS, occupied=bool(data[0]), battery_pct=battery,
                 temperature_c=21.5)


def toy_encode(reading: Reading) -> tuple[int, bytes]:
    battery = [] if reading.battery_pct is None else [int(reading.battery_pct)]
    return 1, bytes([int(reading.occupied), *battery])


@contextlib.contextmanager
def toy_model() -> Iterator[str]:
    """``toy`` in the model registry until the block ends."""
    models = cast(dict[str, Model], registry())
    models[TOY] = Model(TOY, "test", "a test-only model", frozenset({1}), toy_decode, toy_encode)
    try:
        yield TOY
    finally:
        del models[TOY]
