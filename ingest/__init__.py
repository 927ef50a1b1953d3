"""The MQTT → PostgreSQL service, and the database schema it writes.

Exceptions::

    IngestError
    ├── MigrationError     a migration failed or the database is newer than us
    ├── DatabaseUnavailable  the database cannot be reached (bounded retries spent)
    └── BrokerUnavailable  the broker cannot be reached (bounded retries spent, or no
                           first connection in time) or the client cannot be set up
"""


class IngestError(Exception):
    """Base of the errors this package raises."""


class MigrationError(IngestError):
    """A migration failed, or the schema is of an unknown flavor."""


class DatabaseUnavailable(IngestError):
    """The database could not be reached within the bounded retries."""


class BrokerUnavailable(IngestError):
    """The broker could not be reached within the bounded retries, or the MQTT client
    cannot be set up (its TLS files)."""
