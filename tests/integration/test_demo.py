"""``parkbazaar demo`` with no services configured: embedded PostgreSQL, its own
broker, simulators; the API shows counts, and they change within 30 s; a manager
token made beside it by a command with a bare environment reads its reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from occupancy.config import MqttUrl
from stack.embedded import free_port
from tests.support.mqtt import refused

pytestmark = pytest.mark.slow


def _sites(port: int) -> dict[str, tuple[int, int, int]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sites", timeout=2) as r:
            rows = json.load(r)
    except OSError:
        return None
    return {s["site"]: (s["free"], s["occupied"], s["unknown"]) for s in rows}


def test_demo_runs_the_whole_chain_and_counts_change(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["HOME"] = str(tmp_path / "home")  # where it says it runs (~/.local/state/parkbazaar)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "parkbazaar", "demo", "--port", str(port),
                             "--speed", "600", "--data-dir", str(tmp_path / "data")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen: list[dict[str, tuple[int, int, int]]] = []
        while time.monotonic() - started < 90:
            snap = _sites(port)
            if snap and (not seen or snap != seen[-1]):
                seen.append(snap)
            if len([s for s in seen if any(sum(v[:2]) for v in s.values())]) >= 2:
                break
            time.sleep(0.5)
        first_live = next(i for i, s in enumerate(seen) if any(sum(v[:2]) for v in s.values()))
        assert len(seen) > first_live + 1, f"counts never changed: {seen}"
        assert set(seen[-1]) == {"central-lot", "fruit-market"}
        assert sum(seen[-1]["central-lot"]) == 128 and sum(seen[-1]["fruit-market"]) == 66
        # its broker admits nobody anonymous; ingest and each gateway log in with their own secret
        creds = json.loads((tmp_path / "data" / "credentials.json").read_text())
        ingest = MqttUrl.parse(creds["ingest_url"])
        assert ingest.username == "demo-ingest" and ingest.password
        assert set(creds["gateways"]) == {"shiraz/gw-central-lot", "shiraz/gw-fruit-market"}
        assert refused(ingest.port, None) == "Not authorized"
        assert refused(ingest.port, ingest.username, ingest.password) == "Success"
        _manager_token_beside_it(port, tmp_path / "home")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert f"http://127.0.0.1:{port}/" in out.decode()
    where = tmp_path / "data" / "credentials.json"
    assert f"broker credentials (no anonymous access) in {where}" in out.decode()
    assert "manager token of shiraz" in out.decode() and "database: postgresql://" in out.decode()
    assert not (tmp_path / "data" / "demo.json").exists()  # gone with the demo


def _manager_token_beside_it(port: int, home: Path) -> None:
    """``parkbazaar token create`` with nothing but PATH and HOME: the demo's database."""
    bare = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    made = subprocess.run([sys.executable, "-m", "parkbazaar", "token", "create", "--tenant", "shiraz",
                           "--role", "manager"], env=bare, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/manage/shiraz/sites/fruit-market/stalls",
                                     headers={"Authorization": f"Bearer {made.stdout.strip()}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200 and json.load(r)
