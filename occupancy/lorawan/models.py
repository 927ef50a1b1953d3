"""The registry of supported LoRaWAN device models: look one up, decode, encode.

Adding a model: write ``occupancy/lorawan/<vendor>.py`` with a pure
``decode(fport, payload) -> Frame`` and ``encode(Reading) -> (fport, payload)``
from the vendor's payload documentation, export a ``Model`` (or several), add
it to ``_MODULES`` below, and table-test it in ``tests/unit/lorawan/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache

from occupancy.lorawan import UnknownModel
from occupancy.lorawan.frames import Frame, Model, Reading

# Modules whose ``MODELS`` tuple lists the models they decode.
_MODULES: tuple[str, ...] = (
    "occupancy.lorawan.bosch",
    "occupancy.lorawan.nwave",
    "occupancy.lorawan.netvox",
    "occupancy.lorawan.dingtek",
    "occupancy.lorawan.tekzitel",
)


@cache
def registry() -> Mapping[str, Model]:
    """Every supported model by name."""
    out: dict[str, Model] = {}
    for name in _MODULES:
        for m in importlib.import_module(name).MODELS:
            out[m.name] = m
    return out


def names() -> list[str]:
    return sorted(registry())


def model(name: str) -> Model:
    """The model called ``name``; ``UnknownModel`` lists the known ones."""
    try:
        return registry()[name]
    except KeyError:
        raise UnknownModel(f"unknown device model {name!r}; known: {', '.join(names()) or 'none'}") from None


def decode(name: str, fport: int, payload: bytes) -> Frame:
    """Decode one frame of model ``name``; ``UnknownModel`` or ``FrameError``."""
    return model(name).decode_frame(fport, payload)


def encode(name: str, reading: Reading) -> tuple[int, bytes]:
    """The ``(fport, payload)`` a device of model ``name`` sends for ``reading``."""
    return model(name).encode(reading)
