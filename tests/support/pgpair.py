"""A PostgreSQL primary and its synchronous standby, as two clusters of a test's own.

Both run the deployment's config (deploy/postgres/postgresql.conf and
pg_hba.conf) and listen on 127.0.0.1 with a password, so clients reach them the
way the services do: one multi-host DSN with ``target_session_attrs=read-write``
(``Pair.dsn``). The standby streams from the primary over its Unix socket and is
the one name in the primary's ``synchronous_standby_names``, so a commit returns
only once the standby has flushed it. ``kill_primary`` is the loss of the
machine (SIGKILL to the postmaster and every backend at once); ``promote`` is
what a failover manager (Patroni, CloudNativePG) does next.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

import psutil

from tests.support.pgcluster import Cluster
from tests.support.waiting import wait_until_sync

STANDBY_NAME = "standby1"
PASSWORD = "failover-test"


LISTEN = {"listen_addresses": "'127.0.0.1'"}  # and the Unix socket (replication)


@dataclass
class Pair:
    """The primary, the standby, and the database both serve."""

    primary: Cluster
    standby: Cluster
    database: str = "parkbazaar"

    def dsn(self) -> str:
        """What ingest and the API are given: both hosts, writes to whichever is primary."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return (f"postgresql://postgres:{PASSWORD}@{hosts}/{self.database}"
                "?target_session_attrs=read-write")

    def only(self, c: Cluster, attrs: str = "read-write") -> str:
        """A DSN of one of the two servers (checks in the tests)."""
        return (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{c.port}/{self.database}"
                f"?target_session_attrs={attrs}")

    def kill_primary(self) -> float:
        """SIGKILL the primary's postmaster and all its processes; returns when (monotonic)."""
        pid = int((self.primary.data / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        victims = [postmaster, *postmaster.children(recursive=True)]
        at = time.monotonic()
        for p in victims:
            with contextlib.suppress(ProcessLookupError):  # a backend that ended meanwhile
                os.kill(p.pid, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        self.primary.running = False
        return at

    def promote(self) -> None:
        """``pg_ctl promote`` the standby and wait until it takes writes."""
        self.standby.run(self.standby.bin / "pg_ctl", "-D", self.standby.data, "-w", "promote")
        self.standby.wait_promoted()

    def remove(self) -> None:
        for c in (self.primary, self.standby):
            c.remove()


def start_pair() -> Pair:
    """Primary (its standby named synchronous, set last) with an empty ``parkbazaar`` database, and
    the standby streaming from it; returns once the standby is a synchronous one."""
    primary = Cluster().initdb()
    standby = Cluster()
    pair = Pair(primary, standby)
    try:
        primary.start(**LISTEN)
        primary.psql(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
        primary.psql(f"CREATE DATABASE {pair.database}")
        conninfo = (f"host={primary.sock} port={primary.port} user=postgres "
                    f"application_name={STANDBY_NAME}")
        standby.run(standby.bin / "pg_basebackup", "-D", standby.data, "-X", "stream", "-R",
                    "-c", "fast", "-d", conninfo)
        with (standby.data / "postgresql.auto.conf").open("a") as auto:
            auto.write(f"primary_conninfo = '{conninfo}'\n")
        # the standby has no synchronous standby of its own: once promoted it runs alone
        # (Patroni's synchronous_mode without _strict) until a new standby is rebuilt
        standby.start(**LISTEN, synchronous_standby_names="''")
        # named synchronous only now: until a standby is there, every commit would wait
        primary.psql(f"ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'")
        primary.psql("SELECT pg_reload_conf()")
        wait_until_sync(lambda: primary.psql(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
            f"'{STANDBY_NAME}' AND state = 'streaming'") == "sync", 60,
            lambda: f"a synchronous standby\n{primary.log()}\n{standby.log()}")
    except BaseException:
        pair.remove()
        raise
    return pair
