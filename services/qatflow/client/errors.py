"""What can go wrong when asking a server, each with the exit code ``qatflow ask`` returns.

The codes are defined here once; the command's help and the table in ``docs/ovms.md`` are
generated from ``exit_codes()``.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_USAGE = 2


class ClientError(RuntimeError):
    """Base of the client's errors; the message is one line a person can act on."""

    exit_code: ClassVar[int] = 1
    meaning: ClassVar[str] = ""
    """What the exit code tells a user, for the help and the docs' table."""


class BadInputError(ClientError):
    """The questions given (arguments or input file) cannot be used."""

    exit_code = 3
    meaning = (
        "bad input: unreadable file, missing columns, invalid JSON line, empty question, "
        "question too long for a window"
    )


class ServerUnavailableError(ClientError):
    """Nothing answers at the address, or it kept answering UNAVAILABLE through every retry."""

    exit_code = 4
    meaning = "server unavailable after every retry"


class ModelNotFoundError(ClientError):
    """The server answers but does not serve the named model."""

    exit_code = 5
    meaning = "model not found on the server, or an HTTP service of the other task"


class InputMismatchError(ClientError):
    """The model expects other inputs (names, shapes, dtypes), or refused the request."""

    exit_code = 6
    meaning = (
        "input mismatch: the model takes other names, dtypes or shapes, or the server refused "
        "the request (HTTP 400/413/422, gRPC `INVALID_ARGUMENT`)"
    )


class BatchTooLargeError(InputMismatchError):
    """The server refused a request for holding more rows (windows, texts) than it takes at once.

    The client then sends smaller requests; a user sees it only for a request of one row.
    """


class DeadlineExceededError(ClientError):
    """A request took longer than its deadline."""

    exit_code = 7
    meaning = "deadline exceeded"


class ServerError(ClientError):
    """The server failed in a way the client cannot classify."""

    exit_code = 8
    meaning = "any other server error"


class VersionNotServedError(ClientError):
    """The server serves the model, but not the version whose tokenizer the client read."""

    exit_code = 9
    meaning = (
        "version not served: the server has the model but not the version asked for "
        "(`--model-version`, by default the newest under `--models-dir`)"
    )


class NotGrpcServerError(ClientError):
    """Something answers at the address, but not gRPC: an HTTP port given as the gRPC one."""

    exit_code = 10
    meaning = "not a gRPC server: the `--grpc` address answers HTTP/1 (a REST port?)"


def exit_codes() -> dict[int, str]:
    """Every exit code of ``qatflow ask`` and what it means, in order."""
    meanings = {
        EXIT_OK: "answered",
        EXIT_USAGE: "usage: bad flags, `--grpc` without `--models-dir`, no published model "
        "(or no such version) there",
    }
    pending = list(ClientError.__subclasses__())
    while pending:
        error = pending.pop()
        pending += error.__subclasses__()
        if "meaning" in vars(error):
            meanings[error.exit_code] = error.meaning
    return dict(sorted(meanings.items()))


def exit_code_table() -> str:
    """The Markdown table of exit codes in ``docs/ovms.md``."""
    rows = [f"| {code} | {meaning} |" for code, meaning in exit_codes().items()]
    return "\n".join(["| exit | meaning |", "|---|---|", *rows]) + "\n"
