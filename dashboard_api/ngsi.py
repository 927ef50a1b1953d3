"""FIWARE Smart Data Models views (``dataModel.Parking``), keyValues form (pure).

A parking site is an ``OffStreetParking`` and each of its bays a ``ParkingSpot``.
A produce market is published as an ``OffStreetParking``-like site with
``extCategory: ["marketStalls"]`` and ``category: ["other"]``, its stalls as
``ParkingSpot`` entities: an extension, documented in docs/api.md — the stall's
``status`` (free/occupied/unknown) means exactly what it does for a bay.
Both validate against the official JSON Schemas (see tests).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from occupancy.ids import SiteId, SpaceId, TenantId

CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
SMART_DATA_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
LINK_HEADER = (f'<{SMART_DATA_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; '
               'type="application/ld+json"')
TYPES = ("OffStreetParking", "ParkingSpot")
_DAY_ABBR = {"monday": "Mo", "tuesday": "Tu", "wednesday": "We", "thursday": "Th",
             "friday": "Fr", "saturday": "Sa", "sunday": "Su"}


def site_urn(tenant: str, site: str) -> str:
    return f"urn:ngsi-ld:OffStreetParking:{tenant}:{site}"


def spot_urn(tenant: str, site: str, space: str) -> str:
    return f"urn:ngsi-ld:ParkingSpot:{tenant}:{site}:{space}"


def parse_urn(entity_id: str) -> tuple[str, list[str]] | None:
    """``(type, [tenant, site(, space)])`` of one of our ids, or None."""
    parts = entity_id.split(":")
    if len(parts) < 5 or parts[:2] != ["urn", "ngsi-ld"] or parts[2] not in TYPES:
        return None
    kinds = (TenantId, SiteId) if parts[2] == "OffStreetParking" else (TenantId, SiteId, SpaceId)
    rest = parts[3:]
    if len(rest) != len(kinds) or not all(k.pattern.fullmatch(r) for k, r in zip(kinds, rest, strict=True)):
        return None  # ids are ASCII by their patterns: a NUL byte or "²" is not one of ours
    return parts[2], rest


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def opening_hours(hours: dict[str, Any] | None) -> str | None:
    """schema.org ``openingHours``, e.g. ``Mo,Tu,We,Th,Sa,Su 07:00-21:00``."""
    if not hours:
        return None
    closed = {d.lower() for d in hours.get("closed_days", [])}
    days = [a for d, a in _DAY_ABBR.items() if d not in closed]
    span = "Mo-Su" if len(days) == 7 else ",".join(days)
    return f"{span} {hours['open']}-{hours['close']}"


def off_street_parking(row: dict[str, Any]) -> dict[str, Any]:
    """A site with its live counts as an ``OffStreetParking`` entity."""
    total, free, occupied = row["total"], row["free"], row["occupied"]
    market = row["kind"] == "market"
    entity: dict[str, Any] = {
        "id": site_urn(row["tenant"], row["site"]), "type": "OffStreetParking",
        "name": row["name"],
        "location": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "category": ["other"] if market else ["parkingLot", "public"],
        "totalSpotNumber": total, "availableSpotNumber": free, "occupiedSpotNumber": occupied,
        "occupancy": round(occupied / total, 4) if total else 0.0,
        "status": ["spacesAvailable"] if free else (["full"] if total and not row["unknown"] else ["open"]),
        "dataProvider": "parkbazaar", "source": f"parkbazaar:{row['tenant']}",
    }
    if market:
        entity["extCategory"] = ["marketStalls"]
    else:
        entity["allowedVehicleType"] = ["car"]
    optional = {
        "alternateName": row.get("name_fa"),
        "address": {"streetAddress": row["address"]} if row.get("address") else None,
        "openingHours": opening_hours(row.get("opening_hours")),
        "dateObserved": _iso(row.get("updated_at")), "occupancyModified": _iso(row.get("updated_at")),
        "observationDateTime": _iso(row.get("updated_at")),
    }
    entity.update({k: v for k, v in optional.items() if v is not None})
    return entity


def parking_spot(row: dict[str, Any]) -> dict[str, Any]:
    """A space with its effective state as a ``ParkingSpot`` entity."""
    entity: dict[str, Any] = {
        "id": spot_urn(row["tenant"], row["site"], row["space"]), "type": "ParkingSpot",
        "name": row["space"],
        "location": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "status": row["state"] if row["state"] in ("free", "occupied", "closed") else "unknown",
        "category": ["offStreet"],
        "refParkingSite": site_urn(row["tenant"], row["site"]),
    }
    if row.get("observed_at"):
        entity["dateObserved"] = _iso(row["observed_at"])
    if row.get("devices"):
        base = f"urn:ngsi-ld:Device:{row['tenant']}:{row['site']}"
        entity["refDevice"] = [f"{base}:{d}" for d in row["devices"]]
    return entity
