"""The service's one exception family: each error carries the HTTP status it answers with."""

from __future__ import annotations


class ServingError(Exception):
    """A request the service cannot answer; rendered as ``{"error": message}``."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(ServingError):
    """The body is not readable JSON."""

    status_code = 400


class ModelNotFoundError(ServingError):
    """No such model here, or the loaded model does the other task than the endpoint asked."""

    status_code = 404


class PayloadTooLargeError(ServingError):
    status_code = 413


class InvalidInputError(ServingError):
    """Readable JSON that does not describe a valid request."""

    status_code = 422


class ModelNotReadyError(ServingError):
    status_code = 503


class OverloadedError(ServingError):
    """Every inference slot is busy; the client should retry rather than queue here."""

    status_code = 503


class BackendUnavailableError(RuntimeError):
    """The runtime a backend needs is missing; the service refuses to start."""
