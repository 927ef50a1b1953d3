"""Hostile payloads for the ingest fuzz tests: raw values no encoder would
write, and mutations (textual and structural) of valid messages.

Pure and seedable: the hypothesis tests draw through ``random.Random`` seeded
by hypothesis, and the broker fuzz test uses a fixed seed.
"""

from __future__ import annotations

import json
import random
from typing import Any

# JSON texts put in place of a value: each has broken a decoder somewhere.
NASTY = [
    "9" * 5000, "-" + "9" * 4400, "1" + "0" * 25, "9223372036854775807", "18446744073709551616",
    "9007199254740993", "2147483648", "-1", "0", "1.5", "1e999", "-1e999", "1e-400", "NaN",
    "Infinity", "-Infinity", "true", "false", "null", "[]", "{}", '""',
    '"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:59:59-01:00"', '"0001-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59.999999Z"', '"1970-01-01T00:00:00Z"', '"1999-12-31T23:59:59Z"',
    '"2026-13-01T00:00:00Z"', '"2026-02-30T00:00:00Z"', '"2026-01-01T00:00:00+25:00"',
    '"2026-01-01T00:00:00"', '"\\u0000"', '"a\\u0000b/c"', '"\\ud800"', '"lot1/\\udfff"',
    '"' + "x" * 2000 + '"', '"lot1/S-001"', '"occupied"', '"heartbeat"', "[" * 3000 + "]" * 3000,
    '{"v":1}', '"\\u202e"', '"٣"', '"²"',
]


def placeholder_paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a decoded JSON document (the root included)."""
    paths = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            paths += placeholder_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            paths += placeholder_paths(v, (*path, i))
    return paths


_MARK = "\x01nasty\x01"


def _dumps(doc: Any) -> str:
    try:
        return json.dumps(doc)
    except (ValueError, RecursionError):  # a document only a parser could read back
        return "{}"


def replace_value(raw: bytes, rng: random.Random) -> bytes:
    """Put one NASTY text in place of one value of a JSON document (raw if it is not JSON)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    path = rng.choice(placeholder_paths(doc))
    if not path:
        return rng.choice(NASTY).encode()
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = _MARK
    text = _dumps(doc).replace(json.dumps(_MARK), rng.choice(NASTY), 1)
    return text.encode()


def add_key(raw: bytes, rng: random.Random) -> bytes:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    if isinstance(doc, dict):
        doc[rng.choice(["x", "v", "boot", "events", "gateway", "online", "at"])] = rng.choice(
            [1, None, "x", [], {}, 2**40])
    return _dumps(doc).encode()


def flip_bytes(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw or b"{}")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] = rng.randrange(256)
    return bytes(data)


def splice(raw: bytes, rng: random.Random) -> bytes:
    """Truncate, duplicate or cut out a slice."""
    if not raw:
        return raw
    i, j = sorted((rng.randrange(len(raw) + 1), rng.randrange(len(raw) + 1)))
    return rng.choice([raw[:i], raw[:j] + raw[i:], raw[:i] + raw[j:], raw[i:j]])


MUTATIONS = (replace_value, replace_value, replace_value, add_key, flip_bytes, splice)


def mutate(raw: bytes, rng: random.Random, rounds: int = 1) -> bytes:
    for _ in range(rounds):
        raw = rng.choice(MUTATIONS)(raw, rng)
    return raw
