"""``/ngsi-ld/v1/entities``: FIWARE Smart Data Models views for city platforms (keyValues)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from dashboard_api import ngsi, queries
from dashboard_api.deps import Connection, Now, PoolDep, acquire
from dashboard_api.http import cached, encode
from dashboard_api.schemas import problems

router = APIRouter(prefix="/ngsi-ld/v1", tags=["FIWARE NGSI-LD"], responses=problems(429, 503))
_ERR = "https://uri.etsi.org/ngsi-ld/errors/"
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "BadRequestData (NGSI-LD problem details)"},
    404: {"description": "ResourceNotFound (NGSI-LD problem details)"},
}


def _problem(status: int, kind: str, title: str) -> JSONResponse:
    return JSONResponse({"type": _ERR + kind, "title": title, "status": status}, status_code=status,
                        media_type="application/json")


def _entities(body: Any) -> JSONResponse:
    return JSONResponse(body, headers={"Link": ngsi.LINK_HEADER, "Cache-Control": "public, max-age=2"})


@router.get("/entities", summary="Sites or spots as Smart Data Models entities", responses=PROBLEMS)
async def entities(
    request: Request, pool: PoolDep, now: Now,
    type: Annotated[Literal["OffStreetParking", "ParkingSpot"] | None,
                    Query(description="`OffStreetParking` or `ParkingSpot`")] = None,
    options: Annotated[str | None, Query(description="`keyValues` (the only form served)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Entities in keyValues form (plain JSON, `@context` in the `Link` header), with an
    `ETag`; served from the same short cache as the site reads (city platforms poll this)."""
    if type is None:
        return _problem(400, "BadRequestData", "type is required: OffStreetParking or ParkingSpot")
    if options not in (None, "keyValues"):
        return _problem(400, "BadRequestData", "only options=keyValues is served")

    async def load() -> bytes:
        async with acquire(pool) as con:
            if type == "OffStreetParking":
                rows = await queries.site_rows(con, now=now)
                return encode([ngsi.off_street_parking(r) for r in rows[offset:offset + limit]])
            spots = await queries.space_rows(con, now=now, limit=limit, offset=offset)
            return encode([ngsi.parking_spot(r) for r in spots])

    return await cached(request, load, {"Link": ngsi.LINK_HEADER})


@router.get("/entities/{entity_id}", summary="One entity by id", responses=PROBLEMS)
async def entity(
    con: Connection, now: Now, entity_id: Annotated[str, Path(max_length=300, description="an entity's URN")],
) -> JSONResponse:
    """`urn:ngsi-ld:OffStreetParking:{tenant}:{site}` or `urn:ngsi-ld:ParkingSpot:{tenant}:{site}:{space}`."""
    parsed = ngsi.parse_urn(entity_id)
    if parsed is None:
        return _problem(400, "BadRequestData", f"not an id of this service: {entity_id}")
    kind, parts = parsed
    if kind == "OffStreetParking":
        found = [r for r in await queries.site_rows(con, now=now)
                 if (r["tenant"], r["site"]) == (parts[0], parts[1])]
        if found:
            return _entities(ngsi.off_street_parking(found[0]))
    else:
        spots = await queries.space_rows(con, now=now, tenant=parts[0], site=parts[1], space=parts[2],
                                         limit=1)
        if spots:
            return _entities(ngsi.parking_spot(spots[0]))
    return _problem(404, "ResourceNotFound", f"no entity {entity_id}")
