"""The MQTT → PostgreSQL service, and the database schema it writes.

Exceptions::

    IngestError
    ├── MigrationError     a migration failed or the database is newer than us
    └── DatabaseUnavailable  the database cannot be reached (bounded retries spent)
"""


class IngestError(Exception):
    """Base of the errors this package raises."""


class MigrationError(IngestError):
    """A migration failed, or the schema is of an unknown flavor."""


class DatabaseUnavailable(IngestError):
    """The database could not be reached within the bounded retries."""
