"""The ``parkbazaar`` command: the composition root that wires the packages
(occupancy, gateway, ingest, dashboard_api, simulators) into processes, and
the embedded services that ``parkbazaar demo`` and the tests start."""
