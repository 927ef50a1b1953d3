"""A LoRaWAN device model of the tests' own, registered for the length of one test.

The provisioning tests need a model name the registry knows, whichever decoders
the package ships: ``register_test_model(monkeypatch)`` makes the registry hold
``TEST_MODEL`` (a real ``Model``: one byte on port 1, 1 = occupied) beside the
shipped ones, and pytest's monkeypatch puts the registry back afterwards.
"""

from __future__ import annotations

import pytest

from occupancy.lorawan import FrameError, models
from occupancy.lorawan.frames import Frame, FrameKind, Model, Reading

TEST_MODEL = "test-bay"


def _decode(fport: int, payload: bytes) -> Frame:
    if len(payload) != 1:
        raise FrameError(f"{TEST_MODEL}: one byte, got {len(payload)}")
    return Frame(TEST_MODEL, fport, FrameKind.STATUS, occupied=payload[0] == 1)


def _encode(reading: Reading) -> tuple[int, bytes]:
    return 1, bytes([int(reading.occupied)])


MODEL = Model(TEST_MODEL, "parkbazaar tests", "a one-byte bay sensor of the tests", frozenset({1}),
              _decode, _encode)


def register_test_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """Add ``MODEL`` to the registry for this test; returns its name."""
    shipped = dict(models.registry())
    monkeypatch.setattr(models, "registry", lambda: {**shipped, TEST_MODEL: MODEL})
    return TEST_MODEL
