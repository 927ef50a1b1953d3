"""``/healthz`` and ``/livez`` (the process answers), ``/readyz`` (the database answers, migrated)."""

from __future__ import annotations

import asyncio

import asyncpg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from dashboard_api import queries
from dashboard_api.deps import PoolDep
from dashboard_api.schemas import Readiness, problems

router = APIRouter(tags=["operations"], responses=problems(429))
READY_TIMEOUT_S = 1.0


@router.get("/healthz", summary="Liveness: the process answers")
@router.get("/livez", summary="Liveness: the process answers (Kubernetes' name)")
async def healthz() -> Readiness:
    """Never touches the database: a failing database must not get the process restarted."""
    return Readiness(status="ok")


@router.get(
    "/readyz", summary="Readiness: the database answers and is migrated", response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready, with the reason"}},
)
async def readyz(pool: PoolDep) -> Readiness | JSONResponse:
    """200 when `SELECT 1` answers within 1 s and the schema is recent enough, else 503."""
    try:
        version = await asyncio.wait_for(_schema_version(pool), READY_TIMEOUT_S)
    except TimeoutError:
        return _unready(f"database did not answer within {READY_TIMEOUT_S:g} s")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return _unready(f"database unavailable: {exc or type(exc).__name__}")
    if version is None or version < queries.REQUIRED_SCHEMA_VERSION:
        return _unready(
            f"database schema is at {version}, need {queries.REQUIRED_SCHEMA_VERSION}: "
            "run `parkbazaar migrate`"
        )
    return Readiness(status="ok")


async def _schema_version(pool: asyncpg.Pool) -> int | None:
    async with pool.acquire() as con:
        await con.fetchval("SELECT 1")
        return await queries.schema_version(con)


def _unready(reason: str) -> JSONResponse:
    body = Readiness(status="unavailable", reason=reason)
    return JSONResponse(body.model_dump(), status_code=503)
