"""Settings and the site file: defaults, precedence, and errors naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ingest.migrate import Flavor, bundled_migrations, plan
from occupancy.config import ConfigError, MqttUrl, load_settings
from occupancy.sitefile import SiteFileError, parse_site_file, read_site_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shiraz.yaml"


def test_defaults_work_on_one_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PARKBAZAAR_DATABASE_URL", "PARKBAZAAR_MQTT_URL", "PARKBAZAAR_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.dsn.startswith("postgresql://") and s.mqtt == MqttUrl("127.0.0.1", 1883)
    assert s.topic_prefix == "parkbazaar/v1" and s.api.port == 8000


def test_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "pb.yaml"
    cfg.write_text("mqtt_url: mqtt://u:p%40ss@127.0.0.1:1999\ningest: {batch_max_messages: 7, protocol: 4}\n")
    monkeypatch.setenv("PARKBAZAAR_INGEST__BATCH_MAX_MESSAGES", "9")
    s = load_settings(cfg)
    assert s.ingest.batch_max_messages == 9 and s.ingest.protocol == 4
    assert s.mqtt == MqttUrl("127.0.0.1", 1999, "u", "p@ss")


def test_config_errors_name_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("mqtt_url: mqtt://nohost\ningest: {batch_max_messages: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    text = str(info.value)
    assert f"{cfg}: mqtt_url" in text and f"{cfg}: ingest.batch_max_messages" in text


def test_ingest_tls_certificate_needs_its_key(tmp_path: Path) -> None:
    cfg = tmp_path / "tls.yaml"
    cfg.write_text("mqtt_url: mqtts://broker:8883\ningest: {tls_ca: ca.pem, tls_cert: ingest.pem}\n")
    with pytest.raises(ConfigError, match=r"ingest.*tls_cert and tls_key go together"):
        load_settings(cfg)
    cfg.write_text("ingest: {tls_ca: ca.pem, tls_cert: i.pem, tls_key: i.key}\n")
    assert load_settings(cfg).ingest.tls_key == Path("i.key")


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("databse_url: postgresql://x/y\n")
    with pytest.raises(ConfigError, match="databse_url"):
        load_settings(cfg)


def test_example_site_file_is_what_the_issue_asks() -> None:
    sf = parse_site_file(yaml.safe_load(EXAMPLE.read_text()))
    lot, market = sf.site("central-lot"), sf.site("fruit-market")
    assert (lot.kind, market.kind) == ("parking", "market")
    assert len(lot.spaces()) >= 120 and len(market.spaces()) >= 60
    assert len(sf.bound_spaces("gw-central-lot")) == len(lot.spaces())
    assert lot.name_fa and market.name_fa and 29 < lot.lat < 30 and 52 < lot.lon < 53


def test_site_file_errors_name_the_key() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["sites"][0]["kind"] = "garage"
    data["gateways"][0]["sites"] = ["nowhere"]
    with pytest.raises(ValidationError) as info:
        parse_site_file(data)
    assert "sites.0.kind" in str(info.value).replace("\n", " ").replace(" ", ".") or "kind" in str(info.value)


def test_reading_a_site_file_names_the_file_and_each_bad_key(tmp_path: Path) -> None:
    assert read_site_file(EXAMPLE).tenant.id == "shiraz"
    data = yaml.safe_load(EXAMPLE.read_text())
    data["sites"][0]["kind"] = "garage"
    data["sites"][1]["lat"] = 123
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(SiteFileError) as info:
        read_site_file(bad)
    lines = str(info.value).splitlines()
    assert f"{bad}: sites.0.kind: " in lines[0] and lines[1].startswith(f"{bad}: sites.1.lat: ")


@pytest.mark.parametrize("text", [None, "sites: [unclosed", b"\xff\xfe not utf-8"])
def test_a_site_file_that_cannot_be_read_is_one_clear_error(tmp_path: Path, text: str | bytes | None) -> None:
    path = tmp_path / "site.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, "utf-8")
    with pytest.raises(SiteFileError, match=f"^{path}: cannot read site file: "):
        read_site_file(path)


def test_migration_plan_picks_the_flavor_and_skips_applied() -> None:
    ms = bundled_migrations()
    plain = plan(ms, set(), Flavor.PLAIN)
    assert [m.version for m in plain] == sorted({m.version for m in plain})
    assert all(m.flavor in (None, Flavor.PLAIN) for m in plain)
    assert plan(ms, {m.version for m in plain}, Flavor.PLAIN) == []
