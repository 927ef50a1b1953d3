"""``/v1/sites``: sites near a point, one site with its zones, a site's spaces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from dashboard_api import NotFound, queries
from dashboard_api.deps import Connection, Near, Now, RadiusM
from dashboard_api.schemas import Problem, SiteDetail, SiteKind, SiteSummary, SpaceStatus

router = APIRouter(prefix="/v1/sites", tags=["sites"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such tenant or site"}
}


@router.get("", summary="Sites near a point, with live counts")
async def list_sites(
    con: Connection, now: Now, near: Near, radius_m: RadiusM = 5000.0,
    kind: Annotated[SiteKind | None, Query(description="only parking lots or markets")] = None,
) -> list[SiteSummary]:
    """Every site within `radius_m` of `near`, nearest first. Without `near`: every
    site, sorted by tenant and site, `distance_m` null (`radius_m` is then ignored)."""
    return await queries.sites(con, now=now, near=near, radius_m=radius_m, kind=kind)


@router.get("/{tenant}/{site}", summary="One site with its zones", responses=NOT_FOUND)
async def get_site(con: Connection, now: Now, tenant: str, site: str) -> SiteDetail:
    """The site's live counts, per zone too, its address and opening hours."""
    found = await queries.site(con, now=now, tenant=tenant, site=site)
    if found is None:
        raise NotFound(f"no site {site!r} of tenant {tenant!r}")
    return found


@router.get("/{tenant}/{site}/spaces", summary="Every space of a site", responses=NOT_FOUND)
async def list_spaces(con: Connection, now: Now, tenant: str, site: str) -> list[SpaceStatus]:
    """Each bay or stall with its state as counted, when it was observed, and its attributes."""
    found = await queries.spaces(con, now=now, tenant=tenant, site=site)
    if found is None:
        raise NotFound(f"no site {site!r} of tenant {tenant!r}")
    return found
