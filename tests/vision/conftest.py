"""Fixtures for the camera occupancy tests: the shared PKLot UFPR05 sample.

The data lives beside the clone (``<repo>/../shared/datasets/pklot-ufpr05``,
PKLot, de Almeida et al. 2015, CC BY 4.0); tests that need it skip with a
clear message when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKLOT = REPO.parent / "shared" / "datasets" / "pklot-ufpr05"


@pytest.fixture(scope="session")
def pklot() -> Path:
    """The UFPR05 sample folder, or skip."""
    if not (PKLOT / "labelled").is_dir():
        pytest.skip(f"PKLot UFPR05 sample not found at {PKLOT} (CI puts ../shared beside the clone)")
    return PKLOT


@pytest.fixture(scope="session")
def full_frame(pklot: Path) -> tuple[Path, Path]:
    """A nearly full frame (sequence5) and its PKLot XML."""
    image = pklot / "labelled" / "sequence5" / "2013-04-12_14_20_09.png"
    return image, image.with_suffix(".xml")
