"""Simulators that drive the real gateway and wire code without hardware.

``simulators.parking`` and ``simulators.market`` are pure, seeded models of a
site's occupancy: the caller passes simulated time in, changes come out, no
clock is read and the same seed gives the same day. ``simulators.engine``
(pure) runs a scenario: what the simulated sensors and cameras read goes into
the gateways' state machines (``gateway.devices``, the same as a real
gateway's), which make the events. ``simulators.play`` and
``simulators.runner`` are the shells that pace it and publish through a
``gateway.node.GatewayNode``.

Exceptions::

    SimulationError    a model used out of order, or a site it cannot model
"""


class SimulationError(Exception):
    """A model was used out of order, or the site cannot be simulated."""
