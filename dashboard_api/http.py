"""HTTP helpers of the public reads: ETag/Cache-Control, a short in-process
response cache, and rate limiting per client address.

The token bucket is pure (``take``); the middleware only keeps one bucket per
client address and answers 429 with ``Retry-After`` when it is empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from starlette.types import ASGIApp, Receive, Scope, Send

HOT_MAX_AGE_S = 2


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def encode(payload: Any) -> bytes:
    return json.dumps(jsonable_encoder(payload), ensure_ascii=False, separators=(",", ":")).encode()


def conditional(request: Request, body: bytes, etag: str, max_age: int = HOT_MAX_AGE_S) -> Response:
    """200 with the body, or 304 when the client's ``If-None-Match`` holds this ETag."""
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    sent = request.headers.get("if-none-match", "")
    if etag in (t.strip() for t in sent.split(",")) or sent.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@dataclass(slots=True)
class _Entry:
    expires: float
    body: bytes
    etag: str


class ResponseCache:
    """Encoded responses by key for ``ttl_s`` seconds, dropped when the live feed sees a change.

    Every API process answers the same hot read many times a second; the data
    behind it changes when ingest commits (the feed clears the cache then) or
    by the clock (an observation going stale), which ``ttl_s`` bounds.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 4096):
        self.ttl_s, self._clock, self._max = ttl_s, clock, max_entries
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[tuple[bytes, str]]] = {}

    def get(self, key: str) -> tuple[bytes, str] | None:
        e = self._entries.get(key)
        if e is None or e.expires <= self._clock():
            return None
        return e.body, e.etag

    def put(self, key: str, body: bytes) -> str:
        etag = etag_of(body)
        if self.ttl_s > 0:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = _Entry(self._clock() + self.ttl_s, body, etag)
        return etag

    def clear(self, _changed: object = None) -> None:
        self._entries.clear()

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[bytes]]) -> tuple[bytes, str]:
        """The cached response, or one ``load()`` shared by every request missing the same key
        at the same time (no stampede on the database when an entry expires)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[bytes, str]] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            body = await load()
            result = body, self.put(key, body)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._loading[key]


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float


def take(bucket: Bucket | None, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """Take one token: (new bucket, 0 when allowed else seconds until one is available) (pure)."""
    tokens = burst if bucket is None else min(burst, bucket.tokens + (now - bucket.at) * rate)
    if tokens >= 1:
        return Bucket(tokens - 1, now), 0.0
    return Bucket(tokens, now), (1 - tokens) / rate


class RateLimitMiddleware:
    """Token bucket per client address on the public paths (``prefixes``); 429 + ``Retry-After``."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, prefixes: tuple[str, ...],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.rate, self.burst, self.prefixes, self.clock = app, rate, burst, prefixes, clock
        self._buckets: dict[str, Bucket] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rate <= 0 or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        now = self.clock()
        bucket, wait = take(self._buckets.get(client), now, self.rate, self.burst)
        self._remember(client, bucket, now)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = str(max(1, math.ceil(wait)))
        body = json.dumps({"detail": f"too many requests from {client}: retry in {retry} s"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", retry.encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _remember(self, client: str, bucket: Bucket, now: float) -> None:
        if len(self._buckets) > 50_000:  # forget clients whose bucket has refilled
            full = self.burst / self.rate
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < full}
        self._buckets[client] = bucket
