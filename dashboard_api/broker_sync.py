"""Keep a Mosquitto's password and ACL files equal to the registry, and make it reload them.

How this works: ``sync_once`` reads every identity (``broker_registry``),
renders ``passwd`` and ``acl`` (``broker``) and replaces a file only when its
text changed, atomically (write beside it, fsync, rename), owned by the
broker's user. When anything changed it sends the broker SIGHUP: Mosquitto
2.0 re-reads both files, applies the new ACL to connected clients at once,
and disconnects every connected client whose username is gone from the
password file or whose password no longer matches (measured on 2.0.11: a
rotated or retired gateway is cut off within ~0.1 s of the signal).

``run_sync`` does that on start, on every ``parkbazaar_broker`` notification
(the triggers of migration 010 fire on any credential write) and every
``interval_s`` as a full check in case a notification was missed. A lost
database is retried with ``occupancy.backoff``, each retry logged and counted, for at most
``retry_max_s``; then it raises ``DatabaseUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import pwd
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from prometheus_client import Counter

from dashboard_api import BrokerError, DatabaseUnavailable
from dashboard_api.broker import BrokerLayout, credential_files, render
from dashboard_api.broker_registry import CHANNEL, identities
from occupancy.backoff import Backoff, Retry

log = logging.getLogger(__name__)

# served by ``parkbazaar broker sync --metrics-port``
CHECKS = Counter("parkbazaar_broker_sync_checks_total", "Registry reads compared with the broker's files")
RELOADS = Counter("parkbazaar_broker_sync_reloads_total", "Credential files rewritten", ["signalled"])
RETRIES = Counter("parkbazaar_broker_sync_db_retries_total", "Database connections retried")

# a file's mode: the password hashes are for the broker's user alone
MODES = {"passwd": 0o600, "acl": 0o640, "mosquitto.conf": 0o644}
DEBOUNCE_S = 0.2  # one reload for a burst of writes (a site file, a script)
SYNC_BACKOFF = Backoff(initial_s=0.5, max_s=30.0)  # between database attempts


@dataclass(frozen=True, slots=True)
class Owner:
    """Who the broker runs as: its files are theirs (applied only when we are root)."""

    uid: int
    gid: int

    @classmethod
    def named(cls, user: str) -> Owner:
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise BrokerError(f"no user {user!r} on this machine (--user)") from exc
        return cls(entry.pw_uid, entry.pw_gid)

    @classmethod
    def of(cls, path: Path) -> Owner | None:
        """Whoever owns ``path`` now (a sync keeps the owner ``broker config`` gave the files)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return cls(st.st_uid, st.st_gid)

    def apply(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)


def write_file(path: Path, text: str, owner: Owner | None) -> bool:
    """Replace ``path`` with ``text`` atomically when it differs; whether it was written."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == text:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODES.get(path.name, 0o644))
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, MODES.get(path.name, 0o644))
    if owner is not None:
        owner.apply(tmp)
    os.replace(tmp, path)
    return True


def write_files(out: Path, files: dict[str, str], owner: Owner | None) -> list[str]:
    """Write the changed files of ``files`` into ``out`` (created, with ``data/``); their names."""
    for folder in (out, out / "data"):
        folder.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            owner.apply(folder)
    return [name for name, text in files.items() if write_file(out / name, text, owner)]


async def write_config(con: asyncpg.Connection, layout: BrokerLayout, prefix: str,
                       owner: Owner | None) -> list[str]:
    """Every file of the broker (config, passwords, ACL) from the registry; the names written."""
    return write_files(layout.out, render(await identities(con), prefix, layout), owner)


def pid_from_file(path: Path) -> Callable[[], int | None]:
    """Read the broker's pid at each reload (it changes when the broker restarts)."""

    def read() -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    return read


def reload_broker(pid: int | None) -> bool:
    """SIGHUP the broker; False (logged) when there is none to signal."""
    if pid is None:
        log.warning("no broker pid known: the files are written, the broker reads them when it starts")
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        log.warning("no broker process %d: the files are written, it reads them when it starts", pid)
        return False
    return True


@dataclass
class SyncStats:
    """What a sync process did (logged; the tests read it)."""

    checks: int = 0
    writes: int = 0
    reloads: int = 0
    retries: int = 0
    last_change: list[str] = field(default_factory=list)


async def sync_once(con: asyncpg.Connection, out: Path, prefix: str, owner: Owner | None,
                    pid: Callable[[], int | None], stats: SyncStats) -> list[str]:
    """Render the credential files from the registry; write and reload if they changed."""
    changed = write_files(out, credential_files(await identities(con), prefix), owner)
    stats.checks += 1
    CHECKS.inc()
    if changed:
        stats.writes += 1
        stats.last_change = changed
        signalled = reload_broker(pid())
        stats.reloads += signalled
        RELOADS.labels(signalled=str(signalled).lower()).inc()
        log.info("broker identities changed (%s): reloaded", ", ".join(changed))
    return changed


async def _follow(con: asyncpg.Connection, sync: Callable[[], Awaitable[object]], interval_s: float,
                  stop: asyncio.Event, ready: asyncio.Event | None) -> None:
    """LISTEN, sync now, then on every notification and every ``interval_s`` until ``stop``."""
    wake = asyncio.Event()
    lost = asyncio.Event()
    await con.add_listener(CHANNEL, lambda *_: wake.set())

    def on_lost(*_: object) -> None:
        lost.set()
        wake.set()

    con.add_termination_listener(on_lost)
    await sync()
    if ready is not None:
        ready.set()
    while not stop.is_set():
        waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
        await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if stop.is_set():
            return
        if lost.is_set():
            raise ConnectionError("the database connection was lost")
        await asyncio.sleep(DEBOUNCE_S if wake.is_set() else 0)
        wake.clear()
        await sync()


async def run_sync(dsn: str, out: Path, prefix: str, *, owner: Owner | None,
                   pid: Callable[[], int | None], stop: asyncio.Event, interval_s: float = 30.0,
                   retry_max_s: float = 900.0, ready: asyncio.Event | None = None,
                   stats: SyncStats | None = None) -> SyncStats:
    """Follow the registry until ``stop`` (see the module docstring)."""
    stats = stats if stats is not None else SyncStats()
    retry = Retry(SYNC_BACKOFF, give_up_after_s=retry_max_s)
    while not stop.is_set():
        try:
            con = await asyncpg.connect(dsn, timeout=10)
            try:
                retry.succeeded()
                sync = functools.partial(sync_once, con, out, prefix, owner, pid, stats)
                await _follow(con, sync, interval_s, stop, ready)
            finally:
                await con.close(timeout=5)
        except (OSError, ConnectionError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError, asyncpg.TargetServerAttributeNotMatched) as exc:
            delay = retry.failed(time.monotonic(), random.random())
            if delay is None:
                raise DatabaseUnavailable(f"no database for {retry_max_s:.0f}s: {exc}") from exc
            stats.retries += 1
            RETRIES.inc()
            log.warning("broker sync: database unavailable (%s); retry %d in %.1fs",
                        exc, stats.retries, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return stats
