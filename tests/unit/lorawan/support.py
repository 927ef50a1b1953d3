"""What the LoRaWAN decoder tests share: the shared ChirpStack fixtures and a fuzz loop."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

from occupancy.lorawan import FrameError
from occupancy.lorawan.frames import Model


def chirpstack_fixtures(shared_dir: Path, folder: str) -> list[tuple[str, int, bytes, bool]]:
    """``(file name, fPort, payload, occupied)`` of each payload*.json in a dataset folder.

    ``occupied`` is the decoded occupancy in the result*.json of the same suffix.
    """
    base = shared_dir / "datasets" / "lorawan-chirpstack" / folder
    cases = []
    for path in sorted(base.glob("payload*.json")):
        event = json.loads(path.read_text())
        result = json.loads((base / path.name.replace("payload", "result")).read_text())
        occupied = result["telemetry"][0]["values"]["occupied"]
        cases.append((path.name, event["fPort"], base64.b64decode(event["data"]), occupied))
    assert cases, f"no payload*.json in {base}"
    return cases


def fuzz(model: Model, extra_ports: list[int], seed: int, rounds: int, longest: int) -> int:
    """Random bytes on the model's ports and ``extra_ports``: each a Frame or a FrameError.

    Returns how many decoded (so a test can check the fuzz reached the readers).
    """
    rng = random.Random(seed)
    ports = [*sorted(model.ports), *extra_ports]
    decoded = 0
    for _ in range(rounds):
        fport, payload = rng.choice(ports), rng.randbytes(rng.randrange(0, longest + 1))
        try:
            frame = model.decode_frame(fport, payload)
        except FrameError:
            continue
        assert frame.occupied in (True, False, None)
        json.dumps(frame.to_json())
        decoded += 1
    return decoded
