"""A clustered MQTT broker of a test's own: three ``nats-server`` nodes (Debian's
package), routed to each other, with JetStream (where NATS keeps MQTT sessions
and QoS 1 messages, replicated over the nodes) and an MQTT 3.1.1 listener each.

``url()`` is the broker URL naming every node (``mqtt://n1,n2,n3?protocol=4``);
``kill(i)`` is the loss of node ``i``'s machine (SIGKILL).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from stack.embedded import free_port, port_open

NODES = 3


def nats_binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


class NatsNode:
    """One node: its ports, its config and JetStream directory, its process."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root / name, name
        self.root.mkdir(parents=True)
        self.client_port, self.route_port, self.mqtt_port = free_port(), free_port(), free_port()
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self, routes: list[int]) -> str:
        route_urls = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
        return f"""server_name: {self.name}
listen: 127.0.0.1:{self.client_port}
http: 127.0.0.1:{self.http_port}
jetstream {{ store_dir: "{self.root / 'js'}" }}
cluster {{
  name: parkbazaar
  listen: 127.0.0.1:{self.route_port}
  routes: [{route_urls}]
}}
# every session and QoS 1 message on all three nodes: any one may go
mqtt {{ listen: 127.0.0.1:{self.mqtt_port}, stream_replicas: 3 }}
"""

    def start(self, routes: list[int]) -> None:
        conf = self.root / "nats.conf"
        conf.write_text(self.config(routes))
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen([str(nats_binary()), "-c", str(conf)], stdout=log,
                                     stderr=subprocess.STDOUT)

    def meta_peers(self) -> int:
        """Nodes this one's JetStream meta group has, with a leader elected (0: not yet)."""
        try:
            jsz = httpx.get(f"http://127.0.0.1:{self.http_port}/jsz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return 0
        meta = jsz.get("meta_cluster") or {}
        return int(meta.get("cluster_size", 0)) if meta.get("leader") else 0

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class NatsCluster:
    """Three nodes started together; ``start`` returns once each takes MQTT connections
    and JetStream has formed over all three."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="pbnats-", dir="/tmp"))
        self.nodes = [NatsNode(self.root, f"n{i + 1}") for i in range(NODES)]

    def start(self, timeout: float = 60.0) -> NatsCluster:
        routes = [n.route_port for n in self.nodes]
        for node in self.nodes:
            node.start([p for p in routes if p != node.route_port])
        deadline = time.monotonic() + timeout
        # MQTT streams are made at the first connection: only once JetStream has all three
        while not all(port_open("127.0.0.1", n.mqtt_port) and n.meta_peers() == NODES
                      for n in self.nodes):
            if time.monotonic() > deadline:
                raise AssertionError("the NATS cluster did not start:\n"
                                     + "\n".join(n.log() for n in self.nodes))
            time.sleep(0.2)
        return self

    def url(self, first: int = 0) -> str:
        """Every node, starting with node ``first`` (clients spread over the nodes)."""
        order = self.nodes[first:] + self.nodes[:first]
        return "mqtt://" + ",".join(f"127.0.0.1:{n.mqtt_port}" for n in order) + "?protocol=4"

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log()}" for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
