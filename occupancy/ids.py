"""Identifiers that validate themselves once, at the edge, and are trusted inside.

Each id is a ``str`` subclass: cheap to compare, hash and serialise, and
impossible to construct with a value that breaks the contract in DESIGN.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from occupancy import OccupancyError


class IdError(OccupancyError, ValueError):
    """A string is not a valid id of the kind asked for."""


class _Id(str):
    pattern: ClassVar[re.Pattern[str]]
    kind: ClassVar[str]

    __slots__ = ()

    def __new__(cls, value: str) -> Self:
        if not isinstance(value, str) or not cls.pattern.fullmatch(value):
            raise IdError(f"invalid {cls.kind} id: {value!r}")
        return super().__new__(cls, value)


class TenantId(_Id):
    """A municipality: ``[a-z0-9-]{1,40}``."""

    __slots__ = ()
    pattern = re.compile(r"[a-z0-9-]{1,40}")
    kind = "tenant"


class GatewayId(_Id):
    """An edge node of a tenant: ``[A-Za-z0-9_-]{1,64}``."""

    __slots__ = ()
    pattern = re.compile(r"[A-Za-z0-9_-]{1,64}")
    kind = "gateway"


class SiteId(_Id):
    """A parking lot or a market, unique within its tenant."""

    __slots__ = ()
    pattern = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
    kind = "site"


class SpaceId(_Id):
    """A bay or a stall, unique within its site (``A-013``, ``stall-12``)."""

    __slots__ = ()
    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
    kind = "space"


class DeviceId(_Id):
    """A sensor or camera behind a gateway, or a LoRaWAN DevEUI."""

    __slots__ = ()
    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
    kind = "device"


@dataclass(frozen=True, slots=True)
class SpaceRef:
    """A space as the wire names it: ``{site}/{space}`` within a tenant."""

    site: SiteId
    space: SpaceId

    @classmethod
    def parse(cls, text: str) -> SpaceRef:
        site, sep, space = text.partition("/") if isinstance(text, str) else ("", "", "")
        if not sep:
            raise IdError(f"invalid space reference (want site/space): {text!r}")
        return cls(SiteId(site), SpaceId(space))

    def __str__(self) -> str:
        return f"{self.site}/{self.space}"
