"""Commands run with nothing configured find a running demo's data; a database without the
schema is named, with the fix (issue 16, item 1). In-process, on this test's own databases:
the demo's file is written as the demo writes it (``stack.running``); the real demo is in
test_demo.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from dashboard_api.auth import principal_for
from parkbazaar.cli import main
from stack.db import connected
from stack.running import RunningDemo, find_demo, write_demo
from tests.support.api import TENANT, seed_city


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``bare(*argv)`` → (exit code, stdout, stderr) of ``parkbazaar`` with nothing configured
    (no PARKBAZAAR_* variable, a home and data home of this test's own)."""
    for key in [k for k in os.environ if k.startswith("PARKBAZAAR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _valid(dsn: str, token: str) -> bool:
    async def check() -> bool:
        async with connected(dsn) as con:
            return await principal_for(con, token) is not None

    return asyncio.run(check())


def test_token_create_finds_a_running_demo_in_its_data_dir_or_the_users(
        bare: Any, database: str, tmp_path: Path) -> None:
    asyncio.run(seed_city(database))
    demo = RunningDemo(os.getpid(), database, None, "http://127.0.0.1:1", str(tmp_path / "elsewhere"))
    write_demo(demo)  # a demo run with --data-dir elsewhere: found through ~/.local/state
    assert find_demo(None) == demo
    code, token, err = bare("token", "create", "--tenant", TENANT, "--role", "manager")
    assert code == 0, err
    assert f"using the running demo's (pid {os.getpid()}" in err
    assert _valid(database, token.strip())
    code, listing, _ = bare("token", "list", "--tenant", TENANT)
    assert code == 0 and "manager" in listing


def test_a_dead_demos_file_is_ignored(bare: Any, tmp_path: Path) -> None:
    dead = RunningDemo(2**22 + 12345, "postgresql://nobody@/x?host=/nowhere", None, None,
                       str(tmp_path / "xdg" / "parkbazaar"))
    write_demo(dead)
    assert find_demo(None) is None


def test_a_database_without_the_schema_is_named(bare: Any, empty_database: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKBAZAAR_DATABASE_URL", empty_database)
    for argv in (("token", "create", "--tenant", TENANT, "--role", "manager"),
                 ("token", "list", "--tenant", TENANT),
                 ("provision", "examples/shiraz.yaml"),
                 ("ingest",)):
        code, out, err = bare(*argv)
        assert code == 1, (argv, out, err)
        assert f"no parkbazaar schema at {empty_database}: run `parkbazaar migrate`" in err, err
        assert "relation" not in err
    code, out, err = bare("migrate", "--flavor", "plain")
    assert code == 0 and "applied" in out, err
    code, _, err = bare("token", "list", "--tenant", TENANT)
    assert code == 2 and "no tenant" in err  # migrated now: the tenant is what is missing
