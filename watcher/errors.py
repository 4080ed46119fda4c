"""The one exception tree of pyrowatch.

Every error the library raises on purpose derives from :class:`WatcherError`, so the CLI
and the daemon catch one type and print one line. Messages are written for a tired
on-call engineer: what is wrong, then what to do. No message ever contains a secret.

::

    WatcherError
    ├── ConfigError                  bad or missing configuration (file, key, value)
    ├── TimeSpecError                a time, duration or range that cannot be parsed
    ├── SelectorError                a label selector or --label matcher that cannot be parsed
    ├── ProfileTypeError             an unknown profile type alias or a malformed ID
    ├── QuerierError                 anything that went wrong talking to Pyroscope
    │   ├── QuerierUnavailable       connection refused/reset, DNS, TLS, timeout
    │   ├── QuerierResponseError     the server answered with a Connect error (code, message)
    │   ├── AccessCommandError       the access_command wrapper failed or printed garbage
    │   └── ResponseTooLarge         the body exceeded the configured limit
    ├── DecodeError                  a flame graph, tree, pprof or JSON payload is malformed
    │   └── InvalidUTF8Error         (watcher.pprof) a pprof string is not UTF-8
    ├── IngestError                  (watcher.sandbox.ingest) the sandbox refuses an upload
    ├── StoreError                   the database is unreachable, locked or not at head
    │   └── SchemaOutOfDate          the database needs `pyrowatch db upgrade`
    └── NotifierError                an alert channel refused or failed a delivery (permanent=...)
        └── DeliveryError            (watcher.alerts.base) one failed send, with channel and reason
"""

from __future__ import annotations


class WatcherError(Exception):
    """Root of every error pyrowatch raises on purpose."""

    #: Process exit code the CLI uses for this error.
    exit_code: int = 1


class ConfigError(WatcherError):
    """The configuration file or environment has a problem."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")


class TimeSpecError(WatcherError, ValueError):
    """A time, duration or range could not be parsed."""

    exit_code = 2


class SelectorError(WatcherError, ValueError):
    """A label selector or matcher could not be parsed."""

    exit_code = 2


class ProfileTypeError(WatcherError, ValueError):
    """An unknown profile type alias, or a malformed profile type ID."""

    exit_code = 2


class QuerierError(WatcherError):
    """Talking to the Pyroscope Querier API failed."""


class QuerierUnavailable(QuerierError):
    """The server could not be reached or did not answer in time."""

    def __init__(self, message: str, *, url: str | None = None, timeout: bool = False) -> None:
        self.url = url
        self.timeout = timeout
        super().__init__(message)


class QuerierResponseError(QuerierError):
    """The server answered with an error (a Connect error body or a bare HTTP status)."""

    def __init__(
        self,
        *,
        code: str,
        message: str,
        status: int,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.method = method
        self.retry_after = retry_after
        where = f"{method}: " if method else ""
        super().__init__(f"{where}server answered {status} {code}: {message}")


class AccessCommandError(QuerierError):
    """The configured access_command failed or printed something that is not a response."""


class ResponseTooLarge(QuerierError):
    """The response body is larger than the configured limit."""


class DecodeError(WatcherError, ValueError):
    """A flame graph, tree, pprof or JSON payload is malformed."""


class StoreError(WatcherError):
    """The database failed."""


class SchemaOutOfDate(StoreError):
    """The database schema is not at the revision this version needs."""


class NotifierError(WatcherError):
    """An alert channel failed to take a notification.

    ``permanent`` is true when retrying cannot help (404, invalid token, payload refused).
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)
