"""A lean HTTP/1.1 load generator for the services, in the spirit of wrk.

Client and service share the machine's cores, so every millisecond the client spends per request
is taken from the service being measured, and a general-purpose client's work per request
(building, encoding and parsing full request and response objects) would count as the service's.
Here the request is encoded once, each client keeps one connection open and reads only the
status line, ``Content-Length`` and the body. The client's own CPU time is measured and
reported beside every figure, so what it still costs is visible.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_TIMEOUT = 120.0


class HttpLoadError(RuntimeError):
    """The service answered something other than a JSON reply or a 503."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


class Connection:
    """One keep-alive connection sending the same pre-encoded POST again and again."""

    def __init__(self, url: str, path: str, body: dict[str, Any]) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        payload = json.dumps(body).encode()
        self._request = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(self._request)
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), _TIMEOUT)
        status_line, *headers = head.decode("latin-1").split("\r\n")
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in headers
                if line.lower().startswith("content-length:")
            ),
            None,
        )
        if length is None:
            raise HttpLoadError(f"a reply without Content-Length: {status_line}")
        body = await asyncio.wait_for(self._reader.readexactly(length), _TIMEOUT)
        if any(line.lower() == "connection: close" for line in headers):
            await self.close()
        return Reply(int(status_line.split(" ", 2)[1]), body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        self._reader = self._writer = None


def checked(reply: Reply) -> dict[str, Any]:
    """The JSON of a 200 reply; anything else is an error."""
    if reply.status != 200:
        raise HttpLoadError(f"HTTP {reply.status}: {reply.body[:300].decode(errors='replace')}")
    result: dict[str, Any] = json.loads(reply.body)
    return result


@dataclass(frozen=True)
class LoadRun:
    times: list[float]  # seconds of each 200 reply
    refused: int  # 503 replies
    wall: float  # seconds from the first request to the last reply
    client_cpu: float  # CPU seconds this process spent meanwhile
    last: dict[str, Any]  # the last reply's JSON


def run_load(
    url: str,
    path: str,
    body: dict[str, Any],
    clients: int,
    requests: int,
    warmup_rounds: int = 2,
) -> LoadRun:
    """``clients`` connections share ``requests`` requests, each sending its next request as
    soon as its reply is in; 503s are counted, not retried.

    First ``warmup_rounds`` requests per connection run the same way, not counted: a service
    meets a new level of concurrency with one-off work (the runtime prepares kernels for each new
    batch shape on its first inference, a request served beside more others than ever before gets
    its own tokenizer), which would otherwise fall into the measured window of a short run.
    """

    async def run() -> LoadRun:
        connections = [Connection(url, path, body) for _ in range(clients)]
        remaining = 0
        times: list[float] = []
        refused = 0
        last: dict[str, Any] = {}

        async def worker(post: Callable[[], Awaitable[Reply]]) -> None:
            nonlocal remaining, refused, last
            while remaining > 0:
                remaining -= 1
                begin = time.perf_counter()
                reply = await post()
                if reply.status == 503:
                    refused += 1
                    continue
                times.append(time.perf_counter() - begin)
                last = checked(reply)

        async def load(count: int) -> None:
            nonlocal remaining
            remaining = count
            await asyncio.gather(*(worker(connection.post) for connection in connections))

        try:
            await load(max(warmup_rounds, 1) * clients)  # opens every connection, too
            times.clear()
            refused = 0
            cpu, started = time.process_time(), time.perf_counter()
            await load(requests)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            return LoadRun(times, refused, wall, cpu, last)
        finally:
            await asyncio.gather(*(connection.close() for connection in connections))

    return asyncio.run(run())
