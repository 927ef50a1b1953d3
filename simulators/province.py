"""Province scale: many municipalities, each with lots and markets, from a few parameters.

``province_site_files(spec)`` builds one validated site file per municipality
(tenant ``m01`` … ``m84``), each with ``lots`` parking lots of ``bays`` bays in
zones of at most 60, ``markets`` markets of ``stalls`` stalls, and one gateway
per site. Locations scatter around Fars province; market closing days and
opening hours vary per market, drawn from ``seed``. Pure: same spec, same files.
"""

from __future__ import annotations

import random
from typing import Any

from occupancy.sitefile import SiteFile, parse_site_file
from simulators.scenario import ProvinceSpec

CENTRE = (29.6, 52.5)  # Shiraz
ZONE_MAX = 60


def _zones(prefix: str, count: int, width: int) -> list[dict[str, Any]]:
    zones = []
    for i, first in enumerate(range(0, count, ZONE_MAX)):
        n = min(ZONE_MAX, count - first)
        name = chr(ord("A") + i) if i < 26 else f"Z{i}"
        zones.append({"id": name, "spaces": {"prefix": f"{prefix}{name}-", "count": n,
                                             "width": width}})
    return zones


def _lot(rng: random.Random, n: int, spec: ProvinceSpec, lat: float, lon: float) -> dict[str, Any]:
    zones = _zones("", spec.bays, 3)
    first = zones[0]["spaces"]
    zones[0]["attributes"] = {f"{first['prefix']}001": {"disabled": True}}
    if first["count"] > 2:
        zones[0]["attributes"][f"{first['prefix']}{first['count']:03d}"] = {"ev_charger": True}
    return {"id": f"lot-{n}", "kind": "parking", "name": f"Lot {n}",
            "lat": lat + rng.uniform(-0.02, 0.02), "lon": lon + rng.uniform(-0.02, 0.02),
            "opening_hours": {"open": "06:00", "close": "24:00"}, "stale_after_s": 900,
            "zones": zones}


def _market(rng: random.Random, n: int, spec: ProvinceSpec, lat: float, lon: float) -> dict[str, Any]:
    opening = rng.choice(["06:00", "06:30", "07:00", "07:30"])
    closing = rng.choice(["19:00", "20:00", "21:00", "22:00"])
    return {"id": f"market-{n}", "kind": "market", "name": f"Market {n}",
            "lat": lat + rng.uniform(-0.02, 0.02), "lon": lon + rng.uniform(-0.02, 0.02),
            "opening_hours": {"open": opening, "close": closing, "closed_days": ["friday"]},
            "stale_after_s": 1800, "zones": _zones("s", spec.stalls, 3)}


def municipality(spec: ProvinceSpec, index: int) -> dict[str, Any]:
    """The site-file data of municipality ``index`` (1-based)."""
    rng = random.Random(f"{spec.seed}/m{index}")
    lat, lon = CENTRE[0] + rng.uniform(-1.5, 1.5), CENTRE[1] + rng.uniform(-2.0, 2.0)
    sites = [_lot(rng, n, spec, lat, lon) for n in range(1, spec.lots + 1)]
    sites += [_market(rng, n, spec, lat, lon) for n in range(1, spec.markets + 1)]
    return {"tenant": {"id": f"m{index:02d}", "name": f"Municipality {index}",
                       "timezone": "Asia/Tehran"},
            "sites": sites,
            "gateways": [{"id": f"gw-{s['id']}", "sites": [s["id"]]} for s in sites]}


def province_site_files(spec: ProvinceSpec) -> list[SiteFile]:
    """One validated site file per municipality."""
    return [parse_site_file(municipality(spec, i)) for i in range(1, spec.municipalities + 1)]
