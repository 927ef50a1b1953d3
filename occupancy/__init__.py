"""The parkbazaar domain: ids, events, the MQTT wire format, the occupancy state
machine and the camera detector.

Pure, with named exceptions: data in, data out; no sockets, no database, no
clock read behind the caller's back (callers pass ``now``). The places that
touch files or the environment say so in their names: ``occupancy.config``
(settings from the environment and files), ``occupancy.sitefile`` (``read_site_file``, the one
reader of site files), ``occupancy.vision.loading`` (reads frames, PKLot XML and model
files, walks folders), the ``load_*`` functions of ``occupancy.vision``, and
``occupancy.mqtt_client``, the one place that builds paho clients and keeps
them connected (gateway, ingest and simulators all connect through it;
nothing pure imports it). ``occupancy.backoff`` (retry delays) is pure.
The services in ``gateway``, ``ingest`` and ``dashboard_api`` are thin I/O
shells around it. The one file that decides a space's state (debounce,
hysteresis, staleness, heartbeat), for sensors and cameras alike, is
``occupancy.statemachine``.

Exceptions (each also a ``ValueError`` where it reports bad input)::

    OccupancyError            base of everything raised here
    ├── IdError               an id or space reference is malformed (occupancy.ids)
    ├── TopicError            a topic is not a parkbazaar v1 topic (occupancy.topics)
    ├── WireError             a payload breaks the contract (occupancy.wire, .health)
    ├── ConfigError           a setting is wrong (occupancy.config)
    ├── SiteFileError         a site file cannot be read or is not valid (occupancy.sitefile)
    ├── StateMachineError     an illegal input to the state machine (occupancy.statemachine)
    ├── MqttSetupError        an MQTT client cannot be set up: TLS files (occupancy.mqtt_client)
    ├── LorawanError          a LoRaWAN frame or device model (occupancy.lorawan)
    │   ├── UnknownModel      no decoder of that name
    │   └── FrameError        a frame the model cannot decode
    └── VisionError           camera occupancy (occupancy.vision)
        ├── LayoutError       a layout file or site entry is malformed
        ├── ModelError        a model file is missing or malformed
        └── FrameError        a frame is not a usable image
"""


class OccupancyError(Exception):
    """Base of the errors this package raises."""
