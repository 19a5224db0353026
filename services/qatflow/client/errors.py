"""What can go wrong when asking a server, each with the exit code ``qatflow ask`` returns."""

from __future__ import annotations


class ClientError(RuntimeError):
    """Base of the client's errors; the message is one line a person can act on."""

    exit_code = 1


class BadInputError(ClientError):
    """The questions given (arguments or input file) cannot be used."""

    exit_code = 3


class ServerUnavailableError(ClientError):
    """Nothing answers at the address, or it kept answering UNAVAILABLE through every retry."""

    exit_code = 4


class ModelNotFoundError(ClientError):
    """The server answers but does not serve the named model."""

    exit_code = 5


class InputMismatchError(ClientError):
    """The model expects other inputs (names, shapes, dtypes), or refused the request."""

    exit_code = 6


class DeadlineExceededError(ClientError):
    """A request took longer than its deadline."""

    exit_code = 7


class ServerError(ClientError):
    """The server failed in a way the client cannot classify."""

    exit_code = 8
