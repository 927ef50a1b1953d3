"""The public HTTP API of parkbazaar, its web page, metrics, and provisioning.

``create_app(settings)`` in ``dashboard_api.app`` builds the FastAPI
application; ``dashboard_api.provision`` loads a site file into the database.
SQL lives in the query modules (``queries``, ``live``, ``manage``, ``admin``).
This package reads the schema that ``ingest`` migrates but never imports ``ingest``.

Exceptions::

    DashboardError
    ├── NotFound              a tenant, site or row named by a request does not exist (→ 404)
    ├── DatabaseUnavailable   the database did not answer in time (→ 503)
    │   ├── Busy              every slot for expensive reads is taken, and stayed so (→ 503)
    │   └── TooSlow           an expensive read passed its statement timeout (→ 503)
    ├── Unauthorized          no bearer token, or one that is not valid (→ 401)
    ├── Forbidden             a valid token without rights over what it asks for (→ 403)
    ├── Conflict              the row exists already, or is retired (→ 409)
    ├── BadInput              a parameter, body or layout file that cannot be used (→ 422)
    ├── ProvisionError        a site file cannot be loaded (schema missing, conflicting rows)
    │   └── ProvisionConflict a value the file gives (a DevEUI) is another row's (→ 409)
    └── BrokerError           the broker's files cannot be written as asked (no such user, bad listener)
"""


class DashboardError(Exception):
    """Base of the errors this package raises."""


class NotFound(DashboardError):
    """The tenant, site or row a request names does not exist."""


class DatabaseUnavailable(DashboardError):
    """The database could not be reached or did not answer in time."""


class Busy(DatabaseUnavailable):
    """Every slot for expensive reads stayed taken for the whole wait."""


class TooSlow(DatabaseUnavailable):
    """An expensive read ran past its statement timeout and was cancelled."""


class Unauthorized(DashboardError):
    """The request carries no valid bearer token."""


class Forbidden(DashboardError):
    """The token is valid but has no rights over this tenant, site or action."""


class Conflict(DashboardError):
    """The row to create exists already, or the row to change is retired."""


class BadInput(DashboardError):
    """A parameter or body (a range, a layout file, a polygon) that is well-formed but unusable.

    ``loc`` names it as FastAPI's validation errors do (``("query", "to")``), so that
    every 422 answer has the same shape: a list of ``{loc, msg, type}``.
    """

    def __init__(self, message: str, *, loc: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.loc = loc


class ProvisionError(DashboardError):
    """A site file could not be loaded; nothing was written."""


class ProvisionConflict(ProvisionError):
    """The file gives a device a DevEUI that another device (not the file's) holds."""


class BrokerError(DashboardError):
    """The broker's config or credential files cannot be written as asked."""
