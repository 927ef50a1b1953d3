"""One settings layer for every process: environment, then a YAML config file.

Precedence, highest first: ``PARKBAZAAR_*`` environment variables (nested keys
with ``__``, e.g. ``PARKBAZAAR_INGEST__BATCH_MAX_EVENTS``), the config file
(``--config FILE`` or ``PARKBAZAAR_CONFIG``), then the defaults, which work on
one machine. A bad value raises ``ConfigError`` naming the key and the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from occupancy import OccupancyError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


class ConfigError(OccupancyError, ValueError):
    """A setting is wrong; the message names the key and where it came from."""


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """``mqtt://[user:password@]host:port[,host:port…][?protocol=4]`` (``mqtts://`` for TLS).

    Several ``host:port`` are the nodes of one clustered broker: a client
    connects to the first and, whenever a connection fails or is lost, tries
    the next (``occupancy.mqtt_client.Supervisor``). ``host``/``port`` are the
    first, ``more`` the others. ``protocol`` is the MQTT version clients speak
    to this broker: 5 (default) or 4 (MQTT 3.1.1, for brokers that speak
    nothing newer).
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    protocol: int = 5
    more: tuple[tuple[str, int], ...] = ()

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every broker node, in the order clients try them."""
        return ((self.host, self.port), *self.more)

    @classmethod
    def parse(cls, url: str) -> MqttUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"scheme must be mqtt:// or mqtts://, got {url!r}")
        userinfo, _, hostlist = parts.netloc.rpartition("@")
        addresses = [_address(a, url) for a in hostlist.split(",")]
        user, colon, password = userinfo.partition(":")
        query = dict(parse_qsl(parts.query))
        protocol = query.pop("protocol", "5")
        if protocol not in ("4", "5") or query:
            raise ValueError(f"broker URL takes only ?protocol=4|5: {url!r}")
        return cls(
            host=addresses[0][0],
            port=addresses[0][1],
            username=unquote(user) if user else None,
            password=unquote(password) if colon and password else None,
            tls=parts.scheme in ("mqtts", "ssl"),
            protocol=int(protocol),
            more=tuple(addresses[1:]),
        )


def _address(text: str, url: str) -> tuple[str, int]:
    """One ``host:port`` (``[::1]:1883`` for IPv6) of a broker URL."""
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        host = port = None
    if not host or port is None:
        raise ValueError(f"broker URL needs a host and a port for every node: {url!r}")
    return host, port


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(default="parkbazaar-ingest-1", min_length=1, max_length=64)
    # None: "ingest", or with a broker password a name derived from it that no other
    # client can guess (ingest.mqtt.share_group_for); workers sharing a group share a password
    share_group: str | None = None
    shared: bool | None = None  # None: shared where the broker speaks MQTT 5
    protocol: int = Field(default=5, description="MQTT protocol: 5 or 4 (3.1.1)")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    batch_max_messages: int = Field(default=1000, ge=1)
    batch_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    batch_max_delay_ms: int = Field(default=50, ge=1)
    queue_max_messages: int = Field(default=10_000, ge=10)
    # payload bytes received and not yet acknowledged (QoS 0 has no broker in-flight limit)
    queue_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    registry_refresh_s: float = Field(default=2.0, ge=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # 127.0.0.1 outside containers; 0.0.0.0 in one, so that Prometheus can scrape it
    metrics_host: str = "127.0.0.1"
    max_skew_s: float = Field(default=300.0, ge=0)
    retry_max_s: float = Field(default=900.0, ge=0,
                               description="keep retrying a lost database or broker this long, "
                                           "then exit")
    # the waits between broker connection attempts (occupancy.backoff, equal jitter)
    reconnect_initial_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    pipeline_depth: int = Field(default=2, ge=1, le=16)
    writers: int = Field(default=2, ge=1, le=8)
    # also the accepted window: events older than this are refused (too_old)
    retention_days: int | None = Field(default=400, ge=1)
    maintenance_interval_s: float = Field(default=300.0, ge=1)
    # free-space forecasts (docs/forecast.md), in the same maintenance runs: a site's model is
    # refitted when older than this and it has new counts (None: no counts, no refits); the
    # counts and the refits each get forecast_budget_s a run; the models learn from this many
    # days of counts, and older counts are deleted
    forecast_refit_s: float | None = Field(default=86400.0, ge=60)
    forecast_budget_s: float = Field(default=60.0, gt=0, le=3600)
    forecast_history_days: int = Field(default=56, ge=8, le=400)
    # dead letters: kept this many days, payload cut to this many bytes (its length
    # and SHA-256 kept), at most burst then rate_per_s stored per gateway and worker
    dead_letter_retention_days: int | None = Field(default=14, ge=1)
    dead_letter_max_payload_bytes: int = Field(default=4096, ge=0, le=1024 * 1024)
    dead_letter_rate_per_s: float = Field(default=0.2, ge=0)
    dead_letter_burst: int = Field(default=100, ge=1)
    # a birth this long after the last stored status is trusted whatever its boot
    boot_reset_after_s: float = Field(default=600.0, ge=0)
    # TLS to the broker (an mqtts:// URL, or any of these set): the CA to trust (default:
    # the system store) and, for mutual TLS, ingest's certificate and key
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _cert_and_key(self) -> IngestSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together (mutual TLS)")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must not exceed reconnect_max_s")
        return self

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: int) -> int:
        if v not in (4, 5):
            raise ValueError("must be 5 (MQTT 5) or 4 (MQTT 3.1.1)")
        return v


class RateLimit(BaseModel):
    """A token bucket per client address: ``per_s`` refilling up to ``burst`` requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    default_stale_after_s: int = Field(default=900, ge=1)
    # public endpoints: requests per second and burst per client address (0: no limit on any class)
    rate_limit_per_s: float = Field(default=20.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    # the other classes of routes, and 401 answers (a token guesser), each its own bucket
    manage_rate: RateLimit = RateLimit(per_s=10, burst=100)
    admin_rate: RateLimit = RateLimit(per_s=5, burst=60)
    ops_rate: RateLimit = RateLimit(per_s=2, burst=30)
    auth_failure_rate: RateLimit = RateLimit(per_s=0.2, burst=20)
    # request bodies: refused with 413 past this, from Content-Length or while streaming
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # the layout imports (a whole tenant's site file), for requests that carry a token
    max_import_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # expensive reads (history, manager reports): grid points, statement time, concurrency
    max_history_points: int = Field(default=5000, ge=10, le=100_000)
    expensive_timeout_s: float = Field(default=5.0, gt=0, le=300)
    expensive_concurrency: int = Field(default=3, ge=1, le=64)
    expensive_wait_s: float = Field(default=1.0, ge=0, le=60)
    expensive_queue: int = Field(default=64, ge=0)
    # per client (address; token for manager reports): reads in progress, and waiting for them
    expensive_per_client: int = Field(default=1, ge=1, le=64)
    expensive_client_queue: int = Field(default=4, ge=0, le=1000)
    # the database pool of each API process
    pool_size: int = Field(default=8, ge=2, le=100)
    # Swagger UI at /docs and ReDoc at /redoc (assets served from the package); the
    # OpenAPI description at /openapi.json stays
    docs: bool = True
    # hot reads are cached in-process this long (cleared on every change the live feed sees)
    cache_ttl_s: float = Field(default=1.0, ge=0, le=60)
    # a map tile URL template for the web page, e.g. https://tile.example/{z}/{x}/{y}.png
    # ({s} allowed in the host); unset: the map draws the sites on a plain background
    tile_url: str | None = None

    @field_validator("tile_url")
    @classmethod
    def _tile_template(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) URL")
        missing = [p for p in ("{z}", "{x}", "{y}") if p not in parts.path + parts.query]
        if missing:
            raise ValueError(f"{v!r} has no {', '.join(missing)}: a tile URL template "
                             "looks like https://tile.example/{z}/{x}/{y}.png")
        return v

    @model_validator(mode="after")
    def _bulkhead_fits_pool(self) -> ApiSettings:
        if self.expensive_concurrency >= self.pool_size:
            raise ValueError("expensive_concurrency must leave connections of pool_size to other reads")
        return self


class Settings(BaseSettings):
    """Every setting of every process; each process reads the part it needs."""

    model_config = SettingsConfigDict(
        env_prefix="PARKBAZAAR_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str | None = None
    mqtt_url: str | None = None
    topic_prefix: str = Field(default="parkbazaar/v1", pattern=r"^[A-Za-z0-9_/-]+[A-Za-z0-9_-]$")
    data_dir: Path | None = None
    log_level: str = "INFO"
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// DSN")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt(cls, v: str | None) -> str | None:
        if v is not None:
            MqttUrl.parse(v)
        return v

    @property
    def dsn(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    @property
    def mqtt(self) -> MqttUrl:
        return MqttUrl.parse(self.mqtt_url or DEFAULT_MQTT_URL)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of keys")
    return data


def describe_validation_error(exc: ValidationError, origin: str) -> str:
    """One line per problem: ``origin: key.path: message``, and the value given when the
    message does not name it (``got 'garage'``)."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{origin}: {key}: {err['msg']}{got_value(err['input'], err['msg'])}")
    return "\n".join(lines)


def got_value(value: object, message: str) -> str:
    """`` (got VALUE)`` for a plain value the message leaves out; nothing for a mapping or list."""
    if not isinstance(value, str | int | float | bool) or repr(value) in message:
        return ""
    text = repr(value)
    return f" (got {text[:60]}{'…' if len(text) > 60 else ''})"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings; the config file's values sit under the environment's."""
    path = Path(config_file) if config_file else None
    if path is None and os.environ.get("PARKBAZAAR_CONFIG"):
        path = Path(os.environ["PARKBAZAAR_CONFIG"])
    file_values = _read_yaml(path) if path else {}
    origin = str(path) if path else "environment (PARKBAZAAR_*)"
    try:
        from_env = Settings(**overrides)
        merged = _merge(file_values, from_env.model_dump(exclude_unset=True))
        return Settings.model_validate(_merge(merged, overrides)) if merged else from_env
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, origin)) from exc


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
