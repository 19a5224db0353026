"""One logging configuration for every process: readable in ``kubectl logs``, JSON on request."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now, never to a stream replaced and closed since."""

    @property
    def stream(self) -> object:
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "info", fmt: str = "text", tag: str = "") -> None:
    """Route the root logger (and so uvicorn's and NNCF's) to stdout in one format; ``tag``
    prefixes every text line (the rank of a distributed training process)."""
    handler = _StdoutHandler()
    text = _TEXT_FORMAT.replace("%(message)s", f"{tag}%(message)s")
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text, "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "nncf"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


@contextmanager
def step(log: logging.Logger, number: int, total: int, title: str) -> Iterator[None]:
    """Log a numbered heading for work a person waits for, then its duration."""
    log.info("[%d/%d] %s", number, total, title)
    started = time.perf_counter()
    yield
    log.info(
        "[%d/%d] %s done in %s", number, total, title, format_seconds(time.perf_counter() - started)
    )


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
