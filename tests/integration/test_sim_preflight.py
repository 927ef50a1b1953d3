"""``simulate SCENARIO --api URL`` refuses up front what cannot work, naming URL and cause,
and starts nothing (issue 16, item 3). In-process, on this test's database and the
session's broker."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from parkbazaar.cli import main
from stack.embedded import Mosquitto, free_port

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "day.yaml"


@pytest.fixture
def simulate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``simulate(*extra)`` → (exit code, stderr, seconds) of ``parkbazaar simulate day.yaml
    --api <nothing listens> --verify`` with only what the test configures."""
    for key in [k for k in os.environ if k.startswith("PARKBAZAAR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no running demo to find either
    api = f"http://127.0.0.1:{free_port()}"

    def run() -> tuple[int, str, float, str]:
        started = time.monotonic()
        code = main(["simulate", str(SCENARIO), "--api", api, "--verify", "--quiet",
                     "--data-dir", str(tmp_path / "data")])
        return code, capsys.readouterr().err, time.monotonic() - started, api

    return run


def test_nothing_configured_is_refused_at_once(simulate: Any, tmp_path: Path) -> None:
    code, err, took, api = simulate()
    assert code == 2, err
    assert f"--api {api} verifies a deployment's chain, but no database_url and no mqtt_url" in err
    assert took < 5 and not (tmp_path / "data").exists()  # nothing was started


def test_each_service_that_does_not_answer_is_named(
        simulate: Any, empty_database: str, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKBAZAAR_DATABASE_URL", empty_database)
    monkeypatch.setenv("PARKBAZAAR_MQTT_URL", f"mqtt://127.0.0.1:{free_port()}")
    code, err, took, api = simulate()
    assert code == 2, err
    assert f"the API at {api}/readyz did not answer: [Errno 111] Connection refused" in err
    assert f"no parkbazaar schema at {empty_database}: run `parkbazaar migrate`" in err
    assert "the broker at mqtt://127.0.0.1:" in err and "did not answer" in err
    monkeypatch.setenv("PARKBAZAAR_MQTT_URL", broker.url)
    code, err, took, _ = simulate()
    assert code == 2 and "broker" not in err, err  # this broker answers
    assert took < 10
