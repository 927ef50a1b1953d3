"""Certificates for the broker tests, made by the ``openssl`` lines of docs/deploy.md
(repeated here): a CA, the broker's, a gateway's for mutual TLS, and a CA nobody trusts."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.registry import GW, TENANT

P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl("req", "-x509", *P256, "-days", "3650", "-keyout", str(key), "-out", str(cert),
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def issue(ca: tuple[Path, Path], folder: Path, file: str, subject: str, *ext: str) -> tuple[Path, Path]:
    cert, key = folder / f"{file}.pem", folder / f"{file}.key"
    extensions = [a for e in ("basicConstraints=critical,CA:FALSE", *ext) for a in ("-addext", e)]
    openssl("req", "-x509", "-CA", str(ca[0]), "-CAkey", str(ca[1]), *P256, "-days", "825",
            "-keyout", str(key), "-out", str(cert), "-subj", subject, *extensions)
    return cert, key


@dataclass(frozen=True)
class Pki:
    ca: Path
    broker: tuple[Path, Path]
    gateway: tuple[Path, Path]  # CN t1/gw1
    other_ca: Path


def make_pki(folder: Path) -> Pki:
    """A CA, the broker's certificate (localhost, 127.0.0.1), a gateway's (CN t1/gw1) and
    another CA; skips the test without the OpenSSL 3 command line."""
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True,
                             check=False).stdout.split() if shutil.which("openssl") else []
    if version[:1] != ["OpenSSL"] or int(version[1].split(".")[0]) < 3:
        pytest.skip("needs the OpenSSL 3 command line (openssl req -x509 -CA)")
    ca = make_ca(folder, "parkbazaar-ca")
    broker = issue(ca, folder, "broker", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                   "extendedKeyUsage=serverAuth")
    # '/' separates name parts in -subj: the username's slash is escaped
    gateway = issue(ca, folder, "gw1", rf"/CN={TENANT}\/{GW}", "extendedKeyUsage=clientAuth")
    (folder / "other").mkdir()
    other_ca, _ = make_ca(folder / "other", "other-ca")
    return Pki(ca[0], broker, gateway, other_ca)


def context(ca: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx
