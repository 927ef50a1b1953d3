"""What the API refuses before it reads: rate limits per class of route and per client
address, a cap on request bodies, and a bulkhead around expensive reads.

How this works: the two middlewares are pure ASGI and sit outside FastAPI, so a
refused request costs no routing, no body, no token lookup and no connection.
``RateLimitMiddleware`` keeps one token bucket per (class of route, client
address) — public reads, manager reads, admin writes, operations — and one more
per address for answers of 401: a client that keeps sending bad tokens is
answered 429 on every guarded route until its failure bucket refills, before
its next token reaches the database. ``BodyLimitMiddleware`` answers 413 from
``Content-Length`` without calling the app, and counts the bytes of a body sent
without one (chunked) as the app reads it, refusing at the first byte past the
limit. ``Bulkhead`` lets at most N expensive reads of a process hold a database
connection at once; the others wait briefly, then get 503 with ``Retry-After``,
so the pool always keeps connections for the cheap reads.

The bucket arithmetic (``take``, ``available``) is pure; the middlewares only
keep the buckets and answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard_api import Busy

REFUSED = Counter(
    "parkbazaar_api_refused", "Requests refused: rate limit (by class), failed authentications, "
    "bodies too large, expensive reads with no free slot (busy) or past their timeout (too_slow)",
    ["reason"],
)
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --- token buckets (pure) -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    at: float


def available(bucket: Bucket | None, now: float, rate: float, burst: int) -> float:
    """The tokens a bucket holds at ``now`` (a missing bucket is full) (pure)."""
    return burst if bucket is None else min(burst, bucket.tokens + (now - bucket.at) * rate)


def take(bucket: Bucket | None, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """Take one token: (new bucket, 0 when allowed else seconds until one is available) (pure)."""
    tokens = available(bucket, now, rate, burst)
    if tokens >= 1:
        return Bucket(tokens - 1, now), 0.0
    return Bucket(tokens, now), (1 - tokens) / rate


@dataclass(frozen=True, slots=True)
class RateClass:
    """A class of routes (``prefixes`` of their paths) sharing one bucket per client address.
    ``guarded`` routes check tokens: their 401 answers count against the failure bucket."""

    name: str
    per_s: float
    burst: int
    prefixes: tuple[str, ...] = ()
    guarded: bool = False


def classify(path: str, classes: Sequence[RateClass], default: RateClass) -> RateClass:
    """The first class one of whose prefixes starts ``path``, else ``default`` (pure)."""
    for c in classes:
        if path.startswith(c.prefixes):
            return c
    return default


class _Buckets:
    """Buckets by key, forgetting those that have refilled when there are too many."""

    def __init__(self, rate: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate, self.burst, self._max = rate, burst, max_keys
        self._by_key: dict[str, Bucket] = {}

    def take(self, key: str, now: float) -> float:
        bucket, wait = take(self._by_key.get(key), now, self.rate, self.burst)
        if len(self._by_key) > self._max:
            full = self.burst / self.rate
            self._by_key = {k: b for k, b in self._by_key.items() if now - b.at < full}
        self._by_key[key] = bucket
        return wait

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token again (0: it has one), taking nothing."""
        tokens = available(self._by_key.get(key), now, self.rate, self.burst)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


async def refuse(send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer a request here with ``{"detail": …}`` (it never reaches the app)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *headers]})
    await send({"type": "http.response.body", "body": body})


def _retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


class RateLimitMiddleware:
    """A token bucket per class of route and client address, and one for 401 answers;
    429 with ``Retry-After`` when the one that applies is empty."""

    def __init__(self, app: ASGIApp, *, classes: Sequence[RateClass], default: RateClass,
                 auth_failures: RateClass, clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.classes, self.default, self.clock = app, tuple(classes), default, clock
        self._buckets = {c.name: _Buckets(c.per_s, c.burst) for c in (*self.classes, default)}
        self._failures = _Buckets(auth_failures.per_s, auth_failures.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rate_class = classify(scope["path"], self.classes, self.default)
        client = (scope.get("client") or ("?", 0))[0]
        now = self.clock()
        if rate_class.guarded and (wait := self._failures.wait(client, now)) > 0:
            REFUSED.labels("auth_failures").inc()
            await refuse(send, 429, f"too many failed authentications from {client}: retry in "
                         f"{_retry_after(wait)} s", [(b"retry-after", _retry_after(wait).encode())])
            return
        if (wait := self._buckets[rate_class.name].take(client, now)) > 0:
            REFUSED.labels(f"rate_{rate_class.name}").inc()
            await refuse(send, 429, f"too many requests from {client}: retry in {_retry_after(wait)} s",
                         [(b"retry-after", _retry_after(wait).encode())])
            return
        if not rate_class.guarded:
            await self.app(scope, receive, send)
            return

        async def count_failures(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._failures.take(client, self.clock())
            await send(message)

        await self.app(scope, receive, count_failures)


# --- request bodies -----------------------------------------------------------------------------

def content_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (None: absent or not a number) (pure)."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes`` (``large_bytes`` on the ``large_paths``
    when the request carries a token): from ``Content-Length`` before the app runs, or
    at the first chunk past the limit while the app reads a body sent without one."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, large_bytes: int,
                 large_paths: re.Pattern[str]) -> None:
        self.app, self.max_bytes, self.large_bytes = app, max_bytes, large_bytes
        self.large_paths = large_paths

    def limit(self, scope: Scope) -> int:
        if self.large_paths.match(scope["path"]) and _has_header(scope, b"authorization"):
            return self.large_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No route reads the body of a GET: uvicorn buffers at most 64 KiB of one, unread.
        if scope["type"] != "http" or scope["method"] in _NO_BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        length = content_length(scope)
        if length is not None and length > limit:
            REFUSED.labels("body_too_large").inc()
            await refuse(send, 413, _too_large(limit))
            return
        if length is not None:
            await self.app(scope, receive, send)  # a stated length is enforced by the server
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                REFUSED.labels("body_too_large").inc()
                # FastAPI passes an HTTPException raised while it reads the body on to its handler
                raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


# --- expensive reads ----------------------------------------------------------------------------

class Bulkhead:
    """At most ``slots`` expensive reads at once in this process; a read that finds them
    all taken waits up to ``wait_s`` (behind at most ``queue`` others), else ``Busy``."""

    def __init__(self, slots: int, wait_s: float, queue: int) -> None:
        self.slots, self.wait_s, self.queue = slots, wait_s, queue
        self._free = asyncio.Semaphore(slots)
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked() and self._waiting >= self.queue:
            REFUSED.labels("busy").inc()
            raise Busy(f"{self.slots} expensive reads running and {self._waiting} waiting")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), self.wait_s)
        except TimeoutError:
            REFUSED.labels("busy").inc()
            raise Busy(f"no slot for an expensive read within {self.wait_s:g} s") from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._free.release()
