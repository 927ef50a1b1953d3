"""The image, as far as it can be checked without a container daemon: the
Dockerfile's shape (multi-stage, non-root, one entry point), that the build
context .dockerignore lets through is enough to install parkbazaar with its data
files, and that the entry point turns *_FILE secrets into settings and runs a
real command with them."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from occupancy.config import load_settings
from tests.support.deploy_tools import DEPLOY, REPO

DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def in_context(path: str) -> bool:
    """Whether .dockerignore lets ``path`` (relative) into the build context: the
    last pattern matching it or one of its parent folders decides."""
    included = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(p, pattern) for p in prefixes)
        if hit:
            included = negate
    return included


def context_files() -> list[Path]:
    return [p for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts
            and in_context(p.relative_to(REPO).as_posix())]


def test_the_image_is_multi_stage_non_root_with_one_entry_point() -> None:
    steps = instructions()
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2 and " AS build" in stages[0]
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("ENTRYPOINT", '["/usr/local/bin/parkbazaar-entrypoint"]') in final
    assert not [a for op, a in final if op == "RUN" and "pip install" in a], "build in the build stage"


def test_every_copied_source_is_in_the_build_context() -> None:
    for op, args in instructions():
        if op != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (REPO / source).exists(), source
            assert in_context(source), f"{source} is excluded by .dockerignore"


def test_the_build_context_installs_parkbazaar_with_its_data_files(tmp_path: Path, database: str) -> None:
    context, target = tmp_path / "context", tmp_path / "target"
    for path in context_files():
        dest = context / path.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    assert not list(context.glob("tests")) and not list(context.glob("bench"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(context)], check=True, capture_output=True, timeout=300)
    for data in ("ingest/migrations/001_registry.sql", "dashboard_api/static"):
        assert (target / data).exists(), data
    assert list(target.glob("occupancy/**/*.onnx")), "the camera model"

    # the entry point of the image, on the installed copy: a secret file becomes the DSN
    secret = tmp_path / "database_url"
    secret.write_text(database + "\n")
    env = {**os.environ, "PATH": f"{target / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(target),
           "PARKBAZAAR_DATABASE_URL_FILE": str(secret)}
    env.pop("PARKBAZAAR_DATABASE_URL", None)
    proc = subprocess.run(["sh", str(ENTRYPOINT), "migrate", "--flavor", "plain"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert asyncio.run(_tables(database)) >= 10


async def _tables(dsn: str) -> int:
    con = await asyncpg.connect(dsn)
    try:
        return int(await con.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        await con.close()


def entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PARKBAZAAR_")}
    # the `parkbazaar` of the interpreter running the tests, as in the image's PATH
    full["PATH"] = f"{Path(sys.executable).parent}:{full.get('PATH', '')}"
    return subprocess.run(["sh", str(ENTRYPOINT), "--help"], env={**full, **env}, capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)


def test_the_entry_point_refuses_a_secret_given_twice_or_unreadable(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("postgresql://x@db/y")
    twice = entrypoint(tmp_path, PARKBAZAAR_DATABASE_URL="postgresql://a@b/c",
                       PARKBAZAAR_DATABASE_URL_FILE=str(secret))
    assert twice.returncode == 64 and "both PARKBAZAAR_DATABASE_URL and" in twice.stderr
    missing = entrypoint(tmp_path, PARKBAZAAR_MQTT_URL_FILE=str(tmp_path / "nothing"))
    assert missing.returncode == 64 and "cannot read" in missing.stderr
    fine = entrypoint(tmp_path, PARKBAZAAR_DATABASE_URL_FILE=str(secret))
    assert fine.returncode == 0 and "migrate" in fine.stdout


def test_the_image_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("PARKBAZAAR_")]:
        monkeypatch.delenv(key)
    env = " ".join(args for op, args in instructions() if op == "ENV")
    pairs = dict(re.findall(r"(PARKBAZAAR_\w+)=(\S+)", env))
    assert pairs["PARKBAZAAR_INGEST__METRICS_HOST"] == "0.0.0.0"
    for key, value in pairs.items():
        monkeypatch.setenv(key, value)
    assert load_settings().api.host == "0.0.0.0"
