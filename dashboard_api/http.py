"""HTTP helpers of the public reads: ETag/Cache-Control, and a short in-process
response cache with a front that answers its hits before routing (rate limits
and the other refusals are in ``dashboard_api.limits``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

HOT_MAX_AGE_S = 2
CACHE_LOOKUPS = Counter(
    "parkbazaar_api_cache_lookups", "Hot public reads: answered from the response cache (hit) "
    "or by a database query (miss)", ["result"],
)
_HITS, _MISSES = CACHE_LOOKUPS.labels("hit"), CACHE_LOOKUPS.labels("miss")


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def encode(payload: Any) -> bytes:
    return json.dumps(jsonable_encoder(payload), ensure_ascii=False, separators=(",", ":")).encode()


def cache_key(scope: Scope) -> str:
    """The response cache's key of a request: its path and its query string as sent."""
    path: str = scope["path"]
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def not_modified(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header value matches ``etag`` (pure)."""
    sent = if_none_match.strip()
    return sent == "*" or etag in (t.strip() for t in sent.split(","))


def cache_headers(etag: str, max_age: int = HOT_MAX_AGE_S,
                  extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": f"public, max-age={max_age}", **(extra or {})}


def conditional(request: Request, body: bytes, etag: str, max_age: int = HOT_MAX_AGE_S,
                extra: Mapping[str, str] | None = None) -> Response:
    """200 with the body, or 304 when the client's ``If-None-Match`` holds this ETag."""
    headers = cache_headers(etag, max_age, extra)
    if not_modified(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@dataclass(slots=True)
class CacheEntry:
    expires: float
    body: bytes
    etag: str
    route: object  # the route that filled it (``scope["route"]``), which metrics label by
    headers: Mapping[str, str]  # sent besides ETag, Cache-Control and Content-Type


class ResponseCache:
    """Encoded responses by key for ``ttl_s`` seconds, made stale when the live feed sees a change.

    Every API process answers the same hot read many times a second; the data
    behind it changes when ingest commits (the feed calls ``clear`` then) or
    by the clock (an observation going stale), which ``ttl_s`` bounds. Keys are
    ``cache_key(scope)``: only a route whose response depends on nothing but
    its path and query string (and the clock, within ``ttl_s``) may fill it,
    because ``CachedReadFront`` answers later requests for the key unrouted.

    A stale entry is kept to be served *while* one request reloads it
    (stale-while-revalidate): the request that finds it stale waits for the
    database, the others meanwhile get the previous response at once, so an
    expiry or a change never stalls every client behind one query. A load
    that began before a ``clear`` is stored already stale: it may predate
    the change.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096):
        self.ttl_s, self._clock, self._max = ttl_s, clock, max_entries
        self._entries: dict[str, CacheEntry] = {}
        self._loading: dict[str, asyncio.Future[tuple[bytes, str]]] = {}
        self._generation = 0

    def entry(self, key: str) -> CacheEntry | None:
        """The entry to answer ``key`` with: a fresh one, or a stale one while it is being reloaded."""
        e = self._entries.get(key)
        if e is None or (e.expires <= self._clock() and key not in self._loading):
            return None
        return e

    def get(self, key: str) -> tuple[bytes, str] | None:
        """The fresh response of ``key``, if any."""
        e = self._entries.get(key)
        if e is None or e.expires <= self._clock():
            return None
        return e.body, e.etag

    def put(self, key: str, body: bytes, route: object = None, generation: int | None = None,
            headers: Mapping[str, str] | None = None) -> str:
        """Store a response loaded during ``generation`` (stale at once if a change came since)."""
        etag = etag_of(body)
        if self.ttl_s > 0:
            if len(self._entries) >= self._max and key not in self._entries:
                self._entries.clear()
            current = generation is None or generation == self._generation
            expires = self._clock() + self.ttl_s if current else -math.inf
            self._entries[key] = CacheEntry(expires, body, etag, route, dict(headers or {}))
        return etag

    def clear(self, _changed: object = None) -> None:
        """Make every entry stale (the data behind them changed)."""
        self._generation += 1
        for e in self._entries.values():
            e.expires = -math.inf

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[bytes]],
                          route: object = None, headers: Mapping[str, str] | None = None,
                          ) -> tuple[bytes, str]:
        """The fresh response, or one ``load()`` shared by every request missing the same key
        at the same time (no stampede on the database when an entry expires)."""
        hit = self.get(key)
        if hit is not None:
            _HITS.inc()
            return hit
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[bytes, str]] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        _MISSES.inc()
        try:
            body = await load()
            result = body, self.put(key, body, route, generation, headers)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._loading[key]


async def cached(request: Request, load: Callable[[], Awaitable[bytes]],
                 headers: Mapping[str, str] | None = None) -> Response:
    """A hot public read: the response from the app's cache or from ``load()`` (JSON bytes),
    which fills it, so that ``CachedReadFront`` answers the same path and query until a
    change or the TTL. Only for a route whose answer depends on nothing but its path, its
    query string and the clock (``ResponseCache``); ``headers`` go with every answer."""
    cache: ResponseCache = request.app.state.cache
    body, etag = await cache.get_or_load(cache_key(request.scope), load, request.scope.get("route"), headers)
    return conditional(request, body, etag, extra=headers)


class CachedReadFront:
    """Pure ASGI middleware: a GET on a public path whose response the cache holds is
    answered from it here, before FastAPI routes, resolves dependencies and runs the
    endpoint; everything else passes through. Like a reverse proxy's micro-cache
    (with stale-while-revalidate), but in the process, and made stale by the live
    feed on every committed change.

    It sits inside the rate limit and the request metrics, so a hit is limited and
    counted like any request (labelled with the route that filled the entry)."""

    def __init__(self, app: ASGIApp, *, cache: ResponseCache, prefixes: tuple[str, ...]) -> None:
        self.app, self.cache, self.prefixes = app, cache, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = None
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(self.prefixes):
            hit = self.cache.entry(cache_key(scope))
        if hit is None:
            await self.app(scope, receive, send)
            return
        _HITS.inc()
        scope["route"] = hit.route
        if_none_match = next((v for k, v in scope["headers"] if k == b"if-none-match"), b"")
        headers = [(k.lower().encode(), v.encode())
                   for k, v in cache_headers(hit.etag, extra=hit.headers).items()]
        if not_modified(if_none_match.decode("latin-1"), hit.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(hit.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": hit.body})
