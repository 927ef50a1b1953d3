"""Connect to the broker: the one place that builds and supervises paho-mqtt clients.

Not pure: the core's MQTT edge (see ``docs/design.md`` for why it sits in
``occupancy``); nothing pure imports it, so the core never loads paho.

How this works. ``build_client(spec)`` turns a ``ClientSpec`` into a paho
client: MQTT 5 or 3.1.1, client id, credentials, TLS (CA, client certificate
for mutual TLS), last will, a clean or persistent session, manual ack, the
in-flight window; paho's own reconnecting is off. A ``Supervisor`` owns that
client's connection on a thread of its own: connect, run paho's network
thread for that one connection (``loop_start``), wait until it is lost or
``stop`` is asked. On every accepted connection it subscribes again and tells
its owner (``on_connected``), on every loss too (``on_disconnected``); then
``occupancy.backoff.Retry`` gives the wait (and the next attempt goes to the
next address of a broker URL that names several nodes of a cluster), which is logged and counted
(``retries``, and ``on_retry`` for the owner's metrics), and it connects
again, until the bound is spent (``on_give_up``). So reconnection is one
explicit, bounded, logged, counted loop for the gateway and ingest alike.

The owner's callbacks run on paho's network thread while paho holds its
locks: record the fact and wake another thread, never block there.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from occupancy import OccupancyError
from occupancy.backoff import Backoff, Retry
from occupancy.config import MqttUrl

log = logging.getLogger(__name__)


class MqttSetupError(OccupancyError):
    """An MQTT client cannot be set up (a TLS file is missing or not valid)."""


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS to the broker: the CA to trust and, for mutual TLS, a client certificate.

    With no ``ca_file`` the system's trust store is used. ``insecure`` skips
    the host name check (a broker reached by IP with a name-only certificate);
    the chain is still verified.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Will:
    """The last will: published by the broker, QoS 1 and retained, if the session dies."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """How one client connects.

    ``protocol`` may lower the URL's MQTT version (never raise it). A
    persistent session is ``clean_start=False`` with ``session_expiry_s``
    (MQTT 5); over MQTT 3.1.1 that is ``clean_session=False`` when the expiry
    is above 0. ``subscriptions`` (QoS 1) are made again on every connect.
    ``max_inflight`` 0 leaves the window to the owner.
    """

    url: MqttUrl
    client_id: str
    protocol: int = 5
    tls: TlsOptions | None = None
    will: Will | None = None
    clean_start: bool = True
    session_expiry_s: int | None = None
    manual_ack: bool = False
    keepalive_s: int = 30
    max_inflight: int = 20
    subscriptions: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        """5 or 4 (MQTT 3.1.1): what this client speaks to this broker."""
        return min(self.protocol, self.url.protocol)

    @property
    def tls_options(self) -> TlsOptions | None:
        """The TLS to use: the spec's, or the system's trust store for an ``mqtts://`` URL."""
        if self.tls is not None:
            return self.tls
        return TlsOptions() if self.url.tls else None

    @property
    def where(self) -> str:
        """Every address of the broker, comma-separated."""
        return ",".join(f"{host}:{port}" for host, port in self.url.addresses)


def build_client(spec: ClientSpec) -> paho.Client:
    """A paho client as ``spec`` says, not yet connected; ``MqttSetupError`` for bad TLS files."""
    v5 = spec.version == 5
    session: dict[str, Any] = {} if v5 else {
        "clean_session": spec.clean_start or not spec.session_expiry_s}
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=spec.client_id,
                         protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                         manual_ack=spec.manual_ack, reconnect_on_failure=False, **session)
    if spec.url.username:
        client.username_pw_set(spec.url.username, spec.url.password)
    tls = spec.tls_options
    if tls is not None:
        _set_tls(client, tls)
    if spec.will is not None:
        set_will(client, spec.will)
    client.max_inflight_messages_set(spec.max_inflight)
    return client


def set_will(client: paho.Client, will: Will) -> None:
    """The will of the client's next connection (set it while disconnected)."""
    client.will_set(will.topic, will.payload, qos=1, retain=True)


def _set_tls(client: paho.Client, tls: TlsOptions) -> None:
    try:
        client.tls_set(ca_certs=_text(tls.ca_file), certfile=_text(tls.cert_file),
                       keyfile=_text(tls.key_file))
        client.tls_insecure_set(tls.insecure)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise MqttSetupError(f"TLS setup failed: {exc}") from exc


def connect(client: paho.Client, spec: ClientSpec, node: int = 0) -> None:
    """Open one connection (TCP, TLS, CONNECT) to the URL's ``node``-th address (modulo
    their number); paho's ``OSError``/``ValueError`` pass through."""
    addresses = spec.url.addresses
    host, port = addresses[node % len(addresses)]
    if spec.version != 5:
        client.connect(host, port, spec.keepalive_s)
        return
    props = None
    if spec.session_expiry_s is not None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = spec.session_expiry_s
    client.connect(host, port, spec.keepalive_s,
                   clean_start=spec.clean_start, properties=props)


def connect_once(spec: ClientSpec) -> paho.Client:
    """A client connected now, for a short job (no supervisor: it does not reconnect)."""
    client = build_client(spec)
    connect(client, spec)
    client.loop_start()
    return client


def _nothing(*_: object) -> None:
    return None


class Supervisor:
    """One client and the explicit loop that keeps it connected (see the module docstring)."""

    def __init__(self, spec: ClientSpec, *, backoff: Backoff,
                 on_connected: Callable[[paho.Client], None],
                 on_disconnected: Callable[[], None] = _nothing,
                 give_up_after_s: float | None = None,
                 on_retry: Callable[[], None] = _nothing,
                 on_give_up: Callable[[str], None] = _nothing,
                 logger: logging.Logger = log) -> None:
        self.spec = spec
        self._log = logger  # the owner's: a line names the process part it is about
        self.client = build_client(spec)
        self._retry = Retry(backoff, give_up_after_s)
        self._on_connected, self._on_disconnected = on_connected, on_disconnected
        self._on_retry, self._on_give_up = on_retry, on_give_up
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._answered = False  # this connection got a CONNACK, success or refusal
        self._session = False  # this connection was accepted
        self._socket_error: str | None = None  # paho's last word on a broken socket
        self._stopping = threading.Event()
        self._lost = threading.Event()
        self._up = threading.Event()
        self._thread: threading.Thread | None = None
        self.connects = 0  # connections the broker accepted
        self.node = 0  # which of the URL's addresses the next attempt goes to
        self.retries = 0  # waits before another attempt (refused, unreachable, lost)

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())

    def start(self) -> None:
        """Connect in the background and keep connecting until ``stop`` (or the bound)."""
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"mqtt-supervisor-{self.spec.client_id}")
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """True once a connection is accepted; False after ``timeout`` seconds without one."""
        return self._up.wait(timeout)

    def stop(self) -> None:
        """Disconnect cleanly (the broker then does not publish the will) and end the loop."""
        self._stopping.set()
        if self.connected:
            self.client.disconnect()
        self._lost.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    # ---- the supervisor thread ------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._lost.clear()
            if self._connect():
                self.client.loop_start()
                while not self._lost.wait(1.0) and self._network_alive():
                    pass
                self.client.loop_stop()
            if self._stopping.is_set() or not self._wait_before_retry():
                break

    def _connect(self) -> bool:
        self._answered, self._session, self._socket_error = False, False, None
        self.client.on_log = self._on_log  # only until accepted: paho formats every line for it
        try:
            connect(self.client, self.spec, self.node)
        except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS handshake
            self._log.warning("cannot connect to %s: %s", self.where, exc)
            return False
        return True

    def _network_alive(self) -> bool:
        """paho's thread for this connection still runs (a safety net: a lost
        connection normally arrives as ``on_disconnect``)."""
        return getattr(self.client, "_thread", None) is not None

    @property
    def where(self) -> str:
        """The address of the current (or next) attempt."""
        host, port = self.spec.url.addresses[self.node % len(self.spec.url.addresses)]
        return f"{host}:{port}"

    def _wait_before_retry(self) -> bool:
        # a failed or lost connection: the next attempt goes to the cluster's next node
        self.node = (self.node + 1) % len(self.spec.url.addresses)
        if self._session:  # a session ended: its loss starts a new run of retries
            self._retry.succeeded()
        delay = self._retry.failed(time.monotonic(), random.random())
        if delay is None:
            reason = (f"no connection to {self.spec.where} for "
                      f"{self._retry.give_up_after_s:g}s: giving up")
            self._log.error("%s", reason)
            self._on_give_up(reason)
            return False
        self.retries += 1
        self._on_retry()
        self._log.info("reconnecting to %s in %.2fs (attempt %d)", self.where, delay,
                 self._retry.attempts)
        self._stopping.wait(delay)
        return True

    # ---- paho callbacks (network thread) ----------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._answered = True
        if reason.is_failure:
            self._log.warning("broker %s refused the connection: %s", self.where, reason)
            self._lost.set()
            return
        self._session = True
        client.on_log = None
        self.connects += 1
        if self.spec.subscriptions:
            client.subscribe([(f, 1) for f in self.spec.subscriptions])
        self._log.info("connected to %s as %s (connection %d)", self.where, self.spec.client_id,
                 self.connects)
        self._up.set()
        self._on_connected(client)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._up.clear()
        if not self._answered:
            self._log.warning("broker %s closed the connection before accepting it: %s", self.where,
                        closed_unaccepted(self._socket_error or str(reason),
                                          self.spec.tls_options))
        elif self._stopping.is_set():
            self._log.info("disconnected from %s", self.where)
        else:
            self._log.warning("connection to %s lost: %s", self.where, reason)
        self._on_disconnected()
        self._lost.set()

    def _on_log(self, _c: paho.Client, _u: Any, level: int, buf: str) -> None:
        # why a socket broke is told only here (on_disconnect just says "Unspecified error")
        if level == paho.MQTT_LOG_ERR and self._socket_error is None:
            self._socket_error = buf


def closed_unaccepted(detail: str, tls: TlsOptions | None) -> str:
    """Why a broker closed a connection before its CONNACK, as far as the client can tell.

    With TLS 1.3 a broker that requires a client certificate lets the
    handshake finish and only then drops the connection: its "certificate
    required" alert is often lost to the client's CONNECT failing on the
    closed socket, so the client may see just an EOF. Say what to check.
    """
    if tls is None or tls.cert_file is not None:
        return detail
    return (f"{detail}; TLS without a client certificate: if the broker requires one "
            "(require_certificate), configure a certificate and key")


def _text(p: Path | None) -> str | None:
    return None if p is None else str(p)
