"""The local stack: the whole chain of parkbazaar on one machine, in one process.

``stack.local.local_stack(settings, spec)`` is the one context manager that
brings the chain up: the configured database, or an embedded PostgreSQL; the
schema migrated and the site files provisioned; the configured broker, or a
Mosquitto of its own admitting only credentials it issued from the registry
(amqtt where mosquitto is not installed); ingest and the API in this process.
It stops them in reverse order. ``parkbazaar demo``, ``parkbazaar simulate``,
the benches and the tests all start the chain through it.

Modules:

- ``embedded``: processes of our own (Mosquitto, PostgreSQL), free ports;
- ``db``: the one connect-then-close helper, the database of a run, migrate + provision;
- ``broker``: the broker of a run and the credentials it admits;
- ``services``: ingest and the API (uvicorn) in this process, each stoppable;
- ``local``: ``StackSpec``, ``Stack`` and ``local_stack``;
- ``scenario``: a scenario file played against the stack, settled, verified, reported;
- ``demo``: the demo's simulated sites, live against the stack;
- ``running``: the file a running demo writes so that commands beside it find its data.

This package composes ``ingest``, ``dashboard_api`` and ``simulators``; no
other package imports it but ``parkbazaar`` (the command), the tests and the
benches.

Exceptions::

    StackError
    ├── ServiceStartError   a service did not come up (binary missing, port never open,
    │                       ingest not ready in time)
    └── SchemaMissing       a database has no parkbazaar schema (never migrated)
"""


class StackError(Exception):
    """Base of the errors this package raises."""


class ServiceStartError(StackError):
    """A service of the local stack did not start."""


class SchemaMissing(StackError):
    """The database answers but was never migrated."""
