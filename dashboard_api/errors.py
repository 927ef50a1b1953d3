"""How errors become answers: one table from exception to status, and bodies that never
carry database text.

This package's errors say what is wrong in words a client can act on: ``NotFound``
→ 404, ``Unauthorized`` → 401 (with ``WWW-Authenticate``), ``Forbidden`` → 403,
``Conflict`` → 409, all ``{"detail": "…"}``; ``BadInput`` → 422 in the shape of
FastAPI's own validation errors (``{"detail": [{"loc", "msg", "type"}]}``), so a
422 has one schema whichever check refused the request. Whatever the database
itself refuses is caught here, logged, and answered without its text: a value
it cannot store or compare (``DataError``: a NUL character, a number out of
range) → 422, a unique violation → 409, another constraint → 422, a lost or
busy database → 503 with ``Retry-After``, anything else → 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dashboard_api import (
    BadInput,
    Busy,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    TooSlow,
    Unauthorized,
)

log = logging.getLogger(__name__)
RETRY_AFTER_S = 2
Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def invalid(msg: str, loc: tuple[str, ...] = ("body",), kind: str = "bad_input") -> JSONResponse:
    """A 422 shaped like FastAPI's ``HTTPValidationError``."""
    return JSONResponse({"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}, status_code=422)


def _said(status: int) -> Handler:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem(status, str(exc), headers)

    return handler


def _echo(value: Any) -> bool:
    """Whether a refused input may be echoed in a 422: a short, JSON-safe scalar."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 200)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422, less what cannot or should not go back: a NaN (not JSON), a
    whole body, the exception objects in ``ctx``."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
              | ({"input": e["input"]} if _echo(e.get("input")) and "input" in e else {})
              for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadInput)
    return invalid(str(exc), exc.loc)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, Busy | TooSlow):
        detail = str(exc)
    else:
        log.warning("database unavailable for %s: %s", request.url.path, exc or type(exc).__name__)
        detail = "database unavailable"
    return problem(503, detail, {"Retry-After": str(RETRY_AFTER_S)})


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("the database refused a value of %s %s: %s", request.method, request.url.path, exc)
    return invalid("a value of the request cannot be stored or compared (out of range, or text "
                   "with a NUL character)", ("request",), "invalid_value")


async def _integrity(request: Request, exc: Exception) -> JSONResponse:
    log.info("constraint refused %s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return problem(409, "conflicts with a row that exists already")
    return invalid("a value of the request breaks a rule of the stored data", ("body",), "constraint")


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error")


def add_error_handlers(app: FastAPI) -> None:
    """Register the table above on ``app``."""
    table: tuple[tuple[type[Exception], Handler], ...] = (
        (NotFound, _said(404)), (Unauthorized, _said(401)), (Forbidden, _said(403)),
        (Conflict, _said(409)), (BadInput, _bad_input), (RequestValidationError, _validation),
        (DatabaseUnavailable, _unavailable), (asyncpg.PostgresConnectionError, _unavailable),
        (asyncpg.InterfaceError, _unavailable), (ConnectionError, _unavailable),
        (TimeoutError, _unavailable), (asyncpg.TooManyConnectionsError, _unavailable),
        (asyncpg.TargetServerAttributeNotMatched, _unavailable),  # no primary yet (failover)
        (asyncpg.DataError, _data_error), (asyncpg.IntegrityConstraintViolationError, _integrity),
        (asyncpg.PostgresError, _internal), (Exception, _internal),
    )
    for exc_type, handler in table:
        app.add_exception_handler(exc_type, handler)
