"""MQTT topics of contract v1: ``parkbazaar/v1/{tenant}/{gateway}/{channel}``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from occupancy import OccupancyError
from occupancy.ids import GatewayId, IdError, TenantId

ROOT = "parkbazaar/v1"


class Channel(StrEnum):
    EVENTS = "events"
    STATUS = "status"
    HEALTH = "health"
    CMD = "cmd"


class TopicError(OccupancyError, ValueError):
    """A topic is not a parkbazaar v1 topic."""


@dataclass(frozen=True, slots=True)
class Topic:
    tenant: TenantId
    gateway: GatewayId
    channel: Channel

    @classmethod
    def parse(cls, text: str, prefix: str = ROOT) -> Topic:
        """Parse ``{prefix}/{tenant}/{gateway}/{channel}``; raise TopicError."""
        head, sep, rest = text.partition(prefix + "/")
        parts = rest.split("/")
        if head or not sep or len(parts) != 3:
            raise TopicError(f"not a {prefix} topic: {text!r}")
        try:
            return cls(TenantId(parts[0]), GatewayId(parts[1]), Channel(parts[2]))
        except (IdError, ValueError) as exc:
            raise TopicError(f"bad topic {text!r}: {exc}") from exc

    def render(self, prefix: str = ROOT) -> str:
        return f"{prefix}/{self.tenant}/{self.gateway}/{self.channel}"


def topic(tenant: str, gateway: str, channel: Channel, prefix: str = ROOT) -> str:
    """Build a topic string from raw ids (validating them)."""
    return Topic(TenantId(tenant), GatewayId(gateway), channel).render(prefix)


def subscription(channel: Channel, prefix: str = ROOT, share_group: str | None = None) -> str:
    """The wildcard filter for one channel of every gateway, optionally shared."""
    flt = f"{prefix}/+/+/{channel}"
    return f"$share/{share_group}/{flt}" if share_group else flt
