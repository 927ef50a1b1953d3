"""npm packages of the tests, pinned in a folder's ``package-lock.json`` and installed
there with ``npm ci`` on first use (or when the lock file changed), so a fresh clone
needs no manual step: only the npm registry, and only at install time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_TIMEOUT_S = 600.0


def need_npm(why: str) -> None:
    """Skip (saying ``why`` npm is needed) unless node and npm are on PATH."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(f"{why} need Node.js and npm on PATH (apt-get install nodejs npm)")


def installed(folder: Path) -> bool:
    """``folder/node_modules`` is there and was installed from the current lock file."""
    marker = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime


def npm_ci(folder: Path) -> None:
    """``npm ci`` in ``folder``: exactly the pinned packages (a test failure if it fails)."""
    if installed(folder):
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci in {folder} failed:\n{done.stdout}\n{done.stderr}")
