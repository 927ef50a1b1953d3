"""The references a newcomer reads keep up with the code (issue 16, item 7): every site-file
key and scenario key is documented, /readyz's schema version is the code's, the design doc
points at nothing outside the repository, the README has "Add your municipality"."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from dashboard_api.queries import REQUIRED_SCHEMA_VERSION
from occupancy import sitefile
from simulators import scenario

DOCS = Path(__file__).resolve().parents[2] / "docs"
README = DOCS.parent / "README.md"


def _keys(*models: type[BaseModel]) -> set[str]:
    return {field.alias or name for m in models for name, field in m.model_fields.items()}


def test_every_site_file_key_is_in_the_reference() -> None:
    text = (DOCS / "site-file.md").read_text("utf-8")
    keys = _keys(sitefile.SiteFile, sitefile.Tenant, sitefile.Site, sitefile.Zone, sitefile.SpaceRange,
                 sitefile.Hours, sitefile.Device, sitefile.Gateway)
    missing = sorted(k for k in keys if f"`{k}`" not in text and f"{k}:" not in text)
    assert not missing, missing


def test_every_scenario_key_is_in_the_table() -> None:
    text = (DOCS / "simulators.md").read_text("utf-8").split("## Scenario keys", 1)[1]
    keys = _keys(scenario.Scenario, scenario.ParkingSpec, scenario.MarketSpec, scenario.ProvinceSpec,
                 scenario.VerifySpec, scenario.CameraSpec, scenario.SpaceFault, scenario.GatewayFault)
    missing = sorted(k for k in keys if not re.search(rf"[`.\[ ]{re.escape(k)}\b", text))
    assert not missing, missing


def test_readyz_in_the_api_doc_needs_the_codes_schema_version() -> None:
    text = (DOCS / "api.md").read_text("utf-8")
    assert f"`queries.REQUIRED_SCHEMA_VERSION`, now {REQUIRED_SCHEMA_VERSION})" in text
    assert re.findall(r"need (\d+): run", text) == [str(REQUIRED_SCHEMA_VERSION)]


def test_the_design_doc_stays_inside_the_repository() -> None:
    text = (DOCS / "design.md").read_text("utf-8")
    assert "../" not in text and "/work/" not in text and "DESIGN.md" not in text


def test_the_readme_says_how_to_add_a_municipality_and_run_the_demo_on_it() -> None:
    text = README.read_text("utf-8")
    assert "## Add your municipality" in text and "demo --site-file" in text
    assert "[docs/site-file.md](docs/site-file.md)" in text
