"""The programs that read the deployment's files, found or skipped with the reason.

.ci/run installs each of them (Debian packages, the dev extras); a test that
needs one skips only where it cannot be had."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dashboard_api.broker import BrokerLayout, TlsFiles, layout_for
from parkbazaar.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# program -> how to get it
INSTALL = {
    "promtool": "apt-get install prometheus",
    "amtool": "apt-get install prometheus-alertmanager",
    "prometheus-postgres-exporter": "apt-get install prometheus-postgres-exporter",
    "caddy": "apt-get install caddy",
    "kubectl": "kubectl is part of this machine's image; apt-get install kubernetes-client",
    "shellcheck": "apt-get install shellcheck",
}


def tool(name: str) -> str:
    """The program's path, or skip the test saying how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({INSTALL.get(name, 'see .ci/run')}); .ci/run installs it")
    return path


def run(*cmd: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run a checker; a non-zero exit fails the test with its output."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def broker_layout(argv: list[str]) -> BrokerLayout:
    """The listeners a ``parkbazaar broker config …`` command line asks for, parsed by the
    real command's parser (the files' owner does not matter here)."""
    a = build_parser().parse_args(argv)
    tls = TlsFiles(a.tls_cert, a.tls_key, a.tls_ca, a.require_client_cert)
    return layout_for(a.out, "mosquitto", listen=a.listen, services=a.services, local=a.local, tls=tls)
