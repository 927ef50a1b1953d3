"""The broker's identities and rights, rendered as Mosquitto files (pure: rows in, text out).

How this works: every client of the broker is an ``Identity`` read from the
registry: a gateway (username ``{tenant}/{gateway}``) or a service account
(``ingest``, ``api``, ``operator``). ``ROLE_TOPICS`` is the whole access
policy, one row per role: what it may read and write, with ``{prefix}`` the
topic root and ``{tenant}``/``{gateway}`` the gateway's own ids. The ACL
names every topic of every user explicitly: Mosquitto's ``%u`` patterns put
the whole username in one place, and a gateway's ``tenant/gateway`` username
spans two topic levels there, which is how a pattern ACL goes wrong.
``password_file`` lists the stored ``$7$`` hashes as Mosquitto reads them, so
no secret is needed to render it. ``mosquitto_conf`` is the broker's config:
no anonymous clients, the queue limits ingest needs, persistence, the gateways'
listener (TLS when certificates are given, mutual TLS with the certificate's CN
as the username; client ids replaced by usernames), and optionally the
services' listeners, where ingest workers keep client ids of their own: one
across the network (TLS with the same certificate when one is given, passwords,
never a client certificate) and a plain one for services on the same host.
The output is deterministic, so a sync can tell whether anything changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["gateway", "ingest", "api", "operator"]
SERVICE_ROLES: tuple[Role, ...] = ("ingest", "api", "operator")
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# (access, topic) per role; a gateway's rows name only its own topics.
ROLE_TOPICS: dict[Role, tuple[tuple[str, str], ...]] = {
    "gateway": (("write", "{prefix}/{tenant}/{gateway}/events"),
                ("write", "{prefix}/{tenant}/{gateway}/status"),
                ("write", "{prefix}/{tenant}/{gateway}/health"),
                ("read", "{prefix}/{tenant}/{gateway}/cmd")),
    # ingest reads every gateway's events (a $share/… subscription is checked against
    # the topic itself), the retained status, and health for device alerts
    "ingest": (("read", "{prefix}/+/+/events"),
               ("read", "{prefix}/+/+/status"),
               ("read", "{prefix}/+/+/health")),
    # the API reads the database, never the broker: an account that may do nothing
    "api": (),
    # operators' tools watch everything and push configuration down to gateways
    "operator": (("read", "{prefix}/#"),
                 ("write", "{prefix}/+/+/cmd")),
}

FILES = ("mosquitto.conf", "passwd", "acl")


@dataclass(frozen=True, slots=True)
class Identity:
    """A client the broker admits: its username, role and stored secret hash."""

    username: str
    role: Role
    secret_hash: str
    tenant: str | None = None
    gateway: str | None = None

    @classmethod
    def of_gateway(cls, tenant: str, gateway: str, secret_hash: str) -> Identity:
        return cls(gateway_username(tenant, gateway), "gateway", secret_hash, tenant, gateway)

    def topics(self, prefix: str) -> list[tuple[str, str]]:
        """(access, topic) rows of this identity under ``prefix``."""
        return [(access, t.format(prefix=prefix, tenant=self.tenant, gateway=self.gateway))
                for access, t in ROLE_TOPICS[self.role]]


def gateway_username(tenant: str, gateway: str) -> str:
    return f"{tenant}/{gateway}"


def _sorted(identities: Iterable[Identity]) -> list[Identity]:
    return sorted(identities, key=lambda i: (i.role != "gateway", i.username))


def password_file(identities: Iterable[Identity]) -> str:
    """``username:hash`` lines, as ``mosquitto_passwd`` writes them."""
    return "".join(f"{i.username}:{i.secret_hash}\n" for i in _sorted(identities))


def acl_file(identities: Iterable[Identity], prefix: str) -> str:
    """A ``user`` block per identity naming each of its topics; nothing else is allowed."""
    out = ["# Generated from the parkbazaar registry (parkbazaar broker config|sync): do not edit.\n"
           "# Anything not listed is denied, for every user.\n"]
    for ident in _sorted(identities):
        lines = [f"user {ident.username}"] + [f"topic {a} {t}" for a, t in ident.topics(prefix)]
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the broker listens; TLS when ``cert``/``key`` are set."""

    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    require_certificate: bool = False
    # Gateways' listener: the broker replaces a client's id by its username, so no client
    # can take over another's session (ingest's, with every event queued in it) by naming
    # its client id. Services that need ids of their own (ingest workers, several of one
    # account) use a listener without it (``--services``, ``--local``).
    client_id_is_username: bool = False

    @property
    def tls(self) -> bool:
        return self.cert is not None

    def lines(self) -> list[str]:
        out = [f"listener {self.port} {self.host}"]
        if self.cert is not None and self.key is not None:
            out += [f"certfile {self.cert}", f"keyfile {self.key}"]
            if self.ca is not None:
                out.append(f"cafile {self.ca}")
        if self.require_certificate:
            # mutual TLS: the certificate's CN is the username (the ACL's ``tenant/gateway``);
            # no password is asked, so a retired gateway is stopped by the ACL (it loses every topic)
            out += ["require_certificate true", "use_identity_as_username true"]
        if self.client_id_is_username:
            out.append("use_username_as_clientid true")
        return out


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); ``ValueError`` when malformed."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class BrokerLayout:
    """Where the broker's files live and how it runs (the parts of its config not from the registry)."""

    out: Path
    listeners: Sequence[Listener]
    user: str
    log_file: Path | None = None

    def path(self, name: str) -> Path:
        return self.out / name


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The broker's certificate and key, and the CA of client certificates (PEM files)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    require_client_cert: bool = False


def layout_for(out: Path, user: str, *, listen: str | None = None, services: str | None = None,
               local: str | None = None, tls: TlsFiles = TlsFiles(),
               log_file: Path | None = None) -> BrokerLayout:
    """The layout ``parkbazaar broker config`` writes: the gateways' listener (default
    127.0.0.1:1883 plain, or 0.0.0.0:8883 TLS with a certificate; client ids replaced by
    usernames); ``services``, one for services in other containers or hosts such as ingest
    workers (TLS with the same certificate when one is given, client ids kept, never a
    client certificate: they log in with their accounts' passwords); and ``local``, a
    plain one for services on the broker's host. ``ValueError`` on a bad combination."""
    if (tls.cert is None) != (tls.key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if tls.require_client_cert and (tls.cert is None or tls.ca is None):
        raise ValueError("--require-client-cert needs --tls-cert, --tls-key and --tls-ca")
    host, port = parse_listen(listen or ("0.0.0.0:8883" if tls.cert else "127.0.0.1:1883"))
    cert, key, ca = (None if p is None else p.resolve() for p in (tls.cert, tls.key, tls.ca))
    listeners = [Listener(host, port, cert, key, ca, require_certificate=tls.require_client_cert,
                          client_id_is_username=True)]
    if services:
        listeners.append(Listener(*parse_listen(services), cert, key, ca))
    if local:
        listeners.append(Listener(*parse_listen(local)))
    _refuse_clashes(listeners)
    return BrokerLayout(out.resolve(), listeners, user, log_file.resolve() if log_file else None)


WILDCARDS = ("0.0.0.0", "::")


def _refuse_clashes(listeners: Sequence[Listener]) -> None:
    """``ValueError`` when two listeners would bind the same port on one address (the
    broker would not start)."""
    for i, a in enumerate(listeners):
        for b in listeners[i + 1:]:
            if a.port == b.port and (a.host == b.host or {a.host, b.host} & set(WILDCARDS)):
                raise ValueError(f"two listeners on port {a.port}: {a.host} and {b.host}")


def mosquitto_conf(layout: BrokerLayout) -> str:
    """The broker's ``mosquitto.conf``: identities from the files beside it, parkbazaar's limits."""
    log = f"file {layout.log_file}" if layout.log_file else "stderr"
    head = f"""\
# Generated by `parkbazaar broker config` (see docs/deploy.md); `parkbazaar broker sync`
# rewrites passwd and acl from the registry and sends this broker SIGHUP.
per_listener_settings false
allow_anonymous false
password_file {layout.path("passwd")}
acl_file {layout.path("acl")}
pid_file {layout.path("mosquitto.pid")}
# as root, mosquitto drops to this user, who must read these files and write data/
user {layout.user}

# Keep sessions and queued messages across a restart.
persistence true
persistence_location {layout.path("data")}/
autosave_interval 30
# The defaults (1000 queued) silently drop QoS 1 messages for a slow or absent
# persistent subscriber such as ingest: hold everything (0 = no byte limit).
max_queued_messages 1000000
max_queued_bytes 0
# ingest acknowledges after its database commit: allow a whole batch in flight
max_inflight_messages 1000
# events payloads are at most 256 KiB; refuse anything far larger at the door
max_packet_size 1048576
# drop a persistent session that has not come back for a week
persistent_client_expiration 7d

log_dest {log}
log_type error
log_type warning
log_type notice
"""
    return head + "".join("\n" + "\n".join(listener.lines()) + "\n" for listener in layout.listeners)


def render(identities: Sequence[Identity], prefix: str, layout: BrokerLayout) -> dict[str, str]:
    """Every file of the broker, by name in ``layout.out``."""
    return {"mosquitto.conf": mosquitto_conf(layout), **credential_files(identities, prefix)}


def credential_files(identities: Sequence[Identity], prefix: str) -> dict[str, str]:
    """The files that change with the registry (what a sync rewrites)."""
    return {"passwd": password_file(identities), "acl": acl_file(identities, prefix)}
