"""LoRaWAN parking sensors: what their frames mean (pure, no I/O).

``occupancy.lorawan.frames`` holds the types every decoder shares (``Frame``,
``FrameKind``, ``Model``, ``Reading``) and ``occupancy.lorawan.models`` the
registry of supported device models (``decode``, ``encode``, ``model``).
Each vendor's decoder, written from its published payload documentation,
lives in a module of its own (``bosch``, ``nwave``, ``netvox``, ``dingtek``,
``tekzitel``): a pure ``decode(fport, payload) -> Frame`` and, for the
simulators and the table tests, its inverse ``encode(Reading) -> (fport, payload)``.

Exceptions::

    LorawanError          base (an ``OccupancyError`` and a ``ValueError``)
    ├── UnknownModel      no decoder of that name
    └── FrameError        a frame this model cannot decode: wrong port, too short, unknown type
"""

from __future__ import annotations

from occupancy import OccupancyError


class LorawanError(OccupancyError, ValueError):
    """Base of the errors of ``occupancy.lorawan``."""


class UnknownModel(LorawanError):
    """No decoder is registered under that model name."""


class FrameError(LorawanError):
    """A frame the model's decoder cannot read (the message names port, length or type)."""
