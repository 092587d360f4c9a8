"""The one exception tree of newsmon.

    NewsmonError
     ├── ConfigError      a bad or missing setting; the message names the key
     ├── FeedError        a feed that cannot be polled or parsed
     ├── FetchError       a page that cannot be fetched
     │    ├── TransientFetchError   worth retrying (timeouts, 429, 5xx)
     │    └── RefusedFetchError     never retried (SSRF guard, robots.txt, size cap, content type)
     ├── ExtractError     a stored page holds no article text
     ├── WarehouseError   the DuckDB file cannot be opened or written
     ├── AlertError       an alert email cannot be sent
     ├── OrchestratorError the Prefect API does not answer (only when runs go through Prefect)
     └── RunFailed        a run ended, recorded, but failed: a stage raised or no feed could be polled

Only the CLI turns these into one clean line and an exit code. Messages say what
to do next.
"""

__all__ = [
    "NewsmonError", "ConfigError", "FeedError", "FetchError", "TransientFetchError",
    "RefusedFetchError", "WarehouseError", "AlertError", "ExtractError", "OrchestratorError", "RunFailed",
]


class NewsmonError(Exception):
    """Base of every error newsmon raises on purpose."""


class ConfigError(NewsmonError):
    """A configuration value is missing or invalid."""


class FeedError(NewsmonError):
    """A feed could not be polled or parsed."""


class FetchError(NewsmonError):
    """A page could not be fetched. `reason` is a short machine-readable tag."""

    def __init__(self, message: str, reason: str = "error", status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


class TransientFetchError(FetchError):
    """Worth retrying later: timeouts, connection errors, 429 and 5xx answers.

    `unreachable`: the host could not be reached at all (its name did not resolve, or the
    connection was refused or timed out), as opposed to a host that answered badly."""

    def __init__(self, message: str, reason: str = "error", status: int | None = None, *,
                 unreachable: bool = False):
        super().__init__(message, reason, status)
        self.unreachable = unreachable


class RefusedFetchError(FetchError):
    """Refused by policy or by the server for good; retrying will not help."""


class WarehouseError(NewsmonError):
    """The warehouse could not be opened, migrated or written."""


class AlertError(NewsmonError):
    """An alert could not be delivered."""


class ExtractError(NewsmonError):
    """A stored page holds no extractable article (recorded as a rejection)."""


class OrchestratorError(NewsmonError):
    """The Prefect API a run was to go through does not answer (or answers with an error)."""


class RunFailed(NewsmonError):
    """A run that ended, and is recorded, but failed. `result` holds each stage's counts."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}

    def __reduce__(self):  # picklable with its result (Prefect may keep it as a flow run's result)
        return (type(self), (str(self), self.result))
