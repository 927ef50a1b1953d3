"""Where a running demo says how to reach its data, for the commands run beside it.

How this works: once its chain is up, ``parkbazaar demo`` writes
``DATA_DIR/demo.json`` (mode 0600: the broker URL carries ingest's login) with
its process id, database URL, broker URL and API URL, and a copy at a
per-user place that no XDG variable moves
(``~/.local/state/parkbazaar/demo.json``), so a command run with a bare
environment (``env -i``) finds it too.
On exit it removes both (each only if it still names its own pid).

A command run with no database configured (neither flag, environment nor
config file) asks ``find_demo(data_dir)``: the file in the data directory the
demo would use (``data_dir`` setting, else ``~/.local/share/parkbazaar``), then
the per-user one. A file whose process is gone (a killed demo) is ignored.
So the precedence of every setting is: flags, then ``PARKBAZAAR_*``
environment, then the config file, then a running demo, then the defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEMO_FILE = "demo.json"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/parkbazaar``, else ``~/.local/share/parkbazaar``: where the demo keeps its data."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "parkbazaar"


def user_state_dir() -> Path:
    """``~/.local/state/parkbazaar`` (not moved by ``XDG_STATE_HOME``; with no ``$HOME``, as
    under ``env -i``, the home directory comes from the password database)."""
    return Path.home() / ".local" / "state" / "parkbazaar"


@dataclass(frozen=True)
class RunningDemo:
    """What a running demo tells the commands beside it."""

    pid: int
    database_url: str
    mqtt_url: str | None
    api: str | None
    data_dir: str

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / DEMO_FILE


def write_demo(demo: RunningDemo) -> list[Path]:
    """Write the demo's file in its data dir and the per-user copy; the paths written."""
    written = []
    for folder in (Path(demo.data_dir), user_state_dir()):
        with contextlib.suppress(OSError):  # an unwritable home must not stop the demo
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / DEMO_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(asdict(demo), f, indent=2)
            written.append(path)
    return written


def remove_demo(demo: RunningDemo) -> None:
    """Remove the files ``write_demo`` wrote, unless another demo has replaced them since."""
    for folder in (Path(demo.data_dir), user_state_dir()):
        found = read_demo_file(folder / DEMO_FILE)
        if found is not None and found.pid == demo.pid:
            with contextlib.suppress(OSError):
                (folder / DEMO_FILE).unlink()


def read_demo_file(path: Path) -> RunningDemo | None:
    """The demo a file names; None when missing, unreadable or not such a file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunningDemo(pid=int(data["pid"]), database_url=str(data["database_url"]),
                           mqtt_url=data.get("mqtt_url"), api=data.get("api"),
                           data_dir=str(data["data_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_demo(data_dir: Path | None) -> RunningDemo | None:
    """The running demo of ``data_dir`` (default: the demo's default), else the user's; None
    when no demo runs."""
    for folder in (data_dir or default_data_dir(), user_state_dir()):
        found = read_demo_file(folder / DEMO_FILE)
        if found is not None and pid_alive(found.pid):
            return found
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending anything)."""
    if pid <= 0:  # 0 and negatives name process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def public_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
