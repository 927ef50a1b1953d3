"""`parkbazaar lorawan decode|models` with the Bosch and Nwave models: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parkbazaar.cli import main

Capsys = pytest.CaptureFixture[str]


@pytest.mark.parametrize(("device", "fport", "hexs", "occupied"), [
    ("bosch-tpl110", 1, "01", True),
    ("bosch-tpl110", 2, "0112", True),
    ("bosch-tpl110", 3, "00000000990200d100050000001d020200", False),
    ("bosch-tpl110", 4, "001d02", None),
    ("nwave-nps405", 1, "95", True),
    ("nwave-nps405", 2, "00d3d800590b", False),
    ("nwave-nps405", 3, "0204090200", False),
    ("nwave-nps310", 1, "01", True),
    ("nwave-nps310", 3, "010d000201", True),
])
def test_json_is_one_object_with_occupied(capsys: Capsys, device: str, fport: int, hexs: str,
                                          occupied: bool | None) -> None:
    assert main(["lorawan", "decode", "--device", device, "--fport", str(fport), hexs, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert obj["occupied"] is occupied
    assert (obj["device"], obj["fport"]) == (device, fport)


def test_json_carries_the_vendors_fields(capsys: Capsys) -> None:
    main(["lorawan", "decode", "--device", "bosch-tpl110", "--fport", "3",
          "0x00000000 990200d1 00050000 001d0202 00", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert (obj["kind"], obj["firmware_version"], obj["reset_cause"]) == ("startup", "0.29.2", "power_on")
    main(["lorawan", "decode", "--device", "nwave-nps405", "--fport", "2", "00:d3:d8:00:59:0b", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert (obj["battery_v"], obj["temperature_c"], obj["battery_health"]) == (3.344, -10.0, "normal")


def test_plain_output_is_one_key_a_line(capsys: Capsys) -> None:
    assert main(["lorawan", "decode", "--device", "nwave-nps405", "--fport", "1", "95"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "occupied: true" in lines and "previous_state_min: 74" in lines


@pytest.mark.parametrize(("args", "says"), [
    (["--device", "bosch-tpl110", "--fport", "1", "zz"], "is not hex"),
    (["--device", "bosch-tpl110", "--fport", "1", "012"], "odd number of hex digits"),
    (["--device", "bosch-tpl110", "--fport", "1", "0x"], "the frame is empty"),
    (["--device", "bosch-tpl110", "--fport", "9", "01"], "fPort 9 is not one of this model's ports"),
    (["--device", "nwave-nps310", "--fport", "10", "01"], "fPort 10 is not one of this model's ports"),
    (["--device", "bosch-tpl110", "--fport", "3", "0102"],
     "start-up frame has at least 17 bytes, got 2"),
    (["--device", "nwave-nps405", "--fport", "2", "00d3"], "heartbeat frame has at least 3 bytes, got 2"),
    (["--device", "nwave-nps999", "--fport", "1", "01"], "unknown device model 'nwave-nps999'"),
    (["--device", "bosch-tpl110", "--fport", "300", "01"], "fPort 300 is not 0..255"),
])
def test_bad_input_exits_2_with_a_message(capsys: Capsys, args: list[str], says: str) -> None:
    assert main(["lorawan", "decode", *args, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert says in captured.err and captured.err.startswith("parkbazaar lorawan decode: ")


def test_a_port_that_is_not_a_number_exits_2(capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lorawan", "decode", "--device", "bosch-tpl110", "--fport", "one", "01"])
    assert exc.value.code == 2
    assert "--fport" in capsys.readouterr().err


def test_models_lists_the_three(capsys: Capsys) -> None:
    assert main(["lorawan", "models"]) == 0
    out = capsys.readouterr().out
    for name in ("bosch-tpl110", "nwave-nps405", "nwave-nps310"):
        assert name in out


def test_the_installed_command_keeps_its_exit_codes() -> None:
    """The held-out checks run the real command: one JSON line and 0, or stderr and 2."""
    ok = subprocess.run([sys.executable, "-m", "parkbazaar", "lorawan", "decode", "--device", "nwave-nps405",
                         "--fport", "1", "95", "--json"], capture_output=True, text=True, check=False)
    assert (ok.returncode, json.loads(ok.stdout)["occupied"]) == (0, True)
    bad = subprocess.run([sys.executable, "-m", "parkbazaar", "lorawan", "decode", "--device", "bosch-tpl110",
                          "--fport", "3", "01", "--json"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "got 1" in bad.stderr and bad.stdout == ""
