"""The edge process: a disk-backed outbox, MQTT publishing, birth and last will.

``GatewayNode`` (``gateway.node``) is what a device adapter or a simulator
talks to: ``observe()`` writes an event to the outbox (``gateway.outbox``,
SQLite) and the node's sender publishes it (``gateway.publisher``, paho-mqtt)
and deletes it only after the broker's PUBACK. See ``docs/gateway.md``.

Exceptions::

    GatewayError
    ├── OutboxError    the outbox file cannot be opened, read or written
    │                  (sqlite3 errors, translated)
    └── PublishError   the MQTT client refused to publish or connect
                       (paho errors, translated)
"""


class GatewayError(Exception):
    """Base of the errors this package raises."""


class OutboxError(GatewayError):
    """The outbox file cannot be opened, read or written."""


class PublishError(GatewayError):
    """The MQTT client refused an operation (not a lost connection: that is retried)."""
