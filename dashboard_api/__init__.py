"""The public HTTP API of parkbazaar, its web page, metrics, and provisioning.

``create_app(settings)`` in ``dashboard_api.app`` builds the FastAPI
application; ``dashboard_api.provision`` loads a site file into the database.
All SQL lives in ``dashboard_api.queries``. This package reads the schema that
``ingest`` migrates but never imports ``ingest``.

Exceptions::

    DashboardError
    ├── NotFound              a tenant or site named by a request does not exist (→ 404)
    ├── DatabaseUnavailable   the database did not answer in time (→ 503)
    └── ProvisionError        a site file cannot be loaded (schema missing, conflicting rows)
"""


class DashboardError(Exception):
    """Base of the errors this package raises."""


class NotFound(DashboardError):
    """The tenant or site a request names does not exist."""


class DatabaseUnavailable(DashboardError):
    """The database could not be reached or did not answer in time."""


class ProvisionError(DashboardError):
    """A site file could not be loaded; nothing was written."""
