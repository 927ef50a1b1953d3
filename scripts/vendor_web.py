"""Re-fetch the web page's vendored npm packages into ``dashboard_api/static/vendor/``.

The page must never load code from a CDN (a manager's token lives on its origin), so
the map library is committed into the package. This script is how those files were
made and how to check or renew them: for each entry of ``PINNED`` it runs ``npm pack
NAME@VERSION`` (the registry's own tarball), refuses it unless its SHA-256 is the
pinned one, and copies the listed members (and the licence) into the package.

    python3 scripts/vendor_web.py           # fetch, verify, write the files
    python3 scripts/vendor_web.py --check   # fetch, verify, compare: exit 1 if they differ

To upgrade: change the version, run once with the old hash to read the new one in
the error, review the diff of the package, then pin the new hash.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "dashboard_api" / "static" / "vendor"


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str
    sha256: str  # of the registry's tarball, as `npm pack` writes it
    files: dict[str, str]  # member of the tarball (under package/) → path under VENDOR


PINNED = (
    Pinned(
        "leaflet", "1.9.4", "84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77",
        {
            "dist/leaflet.js": "leaflet/leaflet.js",
            "dist/leaflet.css": "leaflet/leaflet.css",
            "dist/images/layers.png": "leaflet/images/layers.png",
            "dist/images/layers-2x.png": "leaflet/images/layers-2x.png",
            "dist/images/marker-icon.png": "leaflet/images/marker-icon.png",
            "dist/images/marker-icon-2x.png": "leaflet/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png": "leaflet/images/marker-shadow.png",
            "LICENSE": "leaflet/LICENSE",
        },
    ),
)


def fetch(pin: Pinned, into: Path) -> Path:
    """The tarball of ``pin`` from the npm registry, its hash checked."""
    done = subprocess.run(["npm", "pack", f"{pin.name}@{pin.version}", "--pack-destination", str(into),
                           "--silent"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"npm pack {pin.name}@{pin.version} failed: {done.stderr.strip()}")
    tarball = into / done.stdout.strip().splitlines()[-1]
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != pin.sha256:
        sys.exit(f"{tarball.name}: sha256 is {digest}, pinned {pin.sha256}: refusing it")
    return tarball


def members(pin: Pinned, tarball: Path) -> dict[Path, bytes]:
    """Destination path → content of each listed member."""
    out: dict[Path, bytes] = {}
    with tarfile.open(tarball) as tar:
        for member, dest in pin.files.items():
            f = tar.extractfile(f"package/{member}")
            if f is None:
                sys.exit(f"{tarball.name}: no file package/{member}")
            out[VENDOR / dest] = f.read()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files only")
    args = parser.parse_args()
    differ = []
    with tempfile.TemporaryDirectory() as tmp:
        for pin in PINNED:
            for path, content in members(pin, fetch(pin, Path(tmp))).items():
                if args.check:
                    if not path.exists() or path.read_bytes() != content:
                        differ.append(f"{path.relative_to(REPO)} differs from {pin.name} {pin.version}")
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                print(f"{path.relative_to(REPO)}  {len(content)} bytes")
    for line in differ:
        print(line, file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
