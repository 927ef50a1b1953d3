"""The parkbazaar domain: ids, events, the MQTT wire format, the occupancy state
machine and the camera detector.

Everything in this package is pure: data in, data out. No sockets, no database,
no clock read behind the caller's back (callers pass ``now``). The services in
``gateway``, ``ingest`` and ``dashboard_api`` are thin I/O shells around it.
Where it reads files it says so: ``config.load_settings`` (environment and
config file) and ``sitefile.read_site_file`` (the one reader of site files).
"""
