"""Which model simulates a site, and which spaces a gateway reports (pure).

``SiteModel`` is what the engine and the runner need of a model
(``ParkingLot``, ``Market``); ``model_for`` makes the one of a site's kind;
``site_spaces`` and ``gateway_of`` read the bindings of a site file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Protocol

from occupancy.ids import SpaceId
from occupancy.model import SpaceState
from occupancy.sitefile import Site, SiteFile
from simulators import SimulationError
from simulators.market import Market, MarketParams
from simulators.parking import Change, ParkingLot, ParkingParams


class SiteModel(Protocol):
    """What a simulator needs of a model (``ParkingLot``, ``Market``)."""

    def initial_states(self, spaces: Iterable[SpaceId], at: datetime) -> list[Change]: ...

    def advance(self, now: datetime) -> list[Change]: ...

    def states(self) -> dict[SpaceId, SpaceState]: ...


def model_for(site: Site, *, seed: int, tz: tzinfo, parking: ParkingParams | None = None,
              market: MarketParams | None = None) -> SiteModel:
    """The model of the site's kind (default parameters unless given)."""
    if site.kind == "parking":
        return ParkingLot(site, seed=seed, tz=tz, params=parking)
    return Market(site, seed=seed, tz=tz, params=market)


def hash_seed(seed: int, name: str) -> int:
    """A per-site seed that does not depend on Python's hash randomisation."""
    return seed * 1_000_003 + sum((i + 1) * ord(c) for i, c in enumerate(name))


def site_spaces(site_file: SiteFile, site_id: str, gateway_id: str) -> list[SpaceId]:
    """The spaces of ``site_id`` that ``gateway_id`` is bound to."""
    try:
        refs = site_file.bound_spaces(gateway_id)
    except StopIteration as exc:
        raise SimulationError(f"gateway {gateway_id!r} is not in the site file") from exc
    spaces = [r.space for r in refs if r.site == site_id]
    if not spaces:
        raise SimulationError(f"gateway {gateway_id!r} is bound to no space of {site_id!r}")
    return spaces


def gateway_of(site_file: SiteFile, site_id: str) -> str:
    """The first gateway bound to ``site_id``."""
    for g in site_file.gateways:
        if any(r.site == site_id for r in site_file.bound_spaces(g.id)):
            return g.id
    raise SimulationError(f"no gateway of tenant {site_file.tenant.id} is bound to {site_id!r}")
