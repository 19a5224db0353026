"""Bounded retries with exponential backoff, for servers that are starting or restarting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from qatflow.client.errors import ServerUnavailableError

log = logging.getLogger("qatflow.client")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    """Tries in all, the first included."""

    backoff: float = 0.2
    """Seconds before the second try; doubled before each further one."""

    max_backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delays(self) -> list[float]:
        return [min(self.backoff * 2**n, self.max_backoff) for n in range(self.attempts - 1)]


def with_retries(call: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Run ``call``; retry only while the server is unavailable, then re-raise with the count."""
    for delay in policy.delays():
        try:
            return call()
        except ServerUnavailableError as error:
            log.debug("%s: %s; retrying in %.2fs", what, error, delay)
            time.sleep(delay)
    try:
        return call()
    except ServerUnavailableError as error:
        raise ServerUnavailableError(
            f"{what}: {error} (gave up after {policy.attempts} attempts)"
        ) from None
