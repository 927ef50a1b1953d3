"""The edge process: device adapters, the camera loop, a disk-backed outbox,
MQTT publishing, birth and last will.

``GatewayService`` (``gateway.service``) polls the device adapters and feeds
their readings to the occupancy state machine (``gateway.devices`` steps one
``occupancy.statemachine`` machine per device); ``GatewayNode``
(``gateway.node``) stores what the machines produce in the outbox
(``gateway.outbox``, SQLite) and its sender publishes it
(``gateway.publisher``, paho-mqtt), deleting it only after the broker's
PUBACK. See ``docs/gateway.md``.

Exceptions::

    GatewayError
    ├── GatewayConfigError  the gateway's config file is missing or invalid
    │                       (gateway.config; pydantic/YAML errors, translated)
    ├── AdapterError        a device could not be read this time
    │                       (gateway.adapters; pymodbus/camera errors, translated)
    ├── CameraError         a frame source cannot be opened or read
    │                       (gateway.camera; cv2 and file errors, translated)
    ├── OutboxError         the outbox file cannot be opened, read or written
    │                       (sqlite3 errors, translated)
    └── PublishError        the MQTT client refused to publish or connect
                            (paho errors, translated)
"""


class GatewayError(Exception):
    """Base of the errors this package raises."""


class OutboxError(GatewayError):
    """The outbox file cannot be opened, read or written."""


class PublishError(GatewayError):
    """The MQTT client refused an operation (not a lost connection: that is retried)."""
