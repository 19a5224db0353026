"""The benchmark's HTTP load generator against a real HTTP/1.1 server on loopback: keep-alive,
503s counted, other errors raised, a server closing the connection followed."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bench.http_load import Connection, HttpLoadError, checked, run_load

BODY = {"question": "Who?", "context": "Ada did."}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, statuses: Iterator[int], close_every: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = statuses
        self.close_every = close_every
        self.bodies: list[dict[str, object]] = []
        self.connections: set[tuple[str, int]] = set()  # client addresses
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
            self.server.connections.add(self.client_address)
            status = next(self.server.statuses)
            served = len(self.server.bodies)
        reply = json.dumps({"answer": body["context"].split()[0], "n": served}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        if self.server.close_every and served % self.server.close_every == 0:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: object) -> None:
        pass


def _serve(statuses: Iterator[int], close_every: int = 0) -> tuple[_Server, str]:
    server = _Server(statuses, close_every)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def stop() -> Iterator[list[_Server]]:
    servers: list[_Server] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_clients_share_the_requests_on_kept_alive_connections(stop):
    server, url = _serve(itertools.repeat(200))
    stop.append(server)
    run = run_load(url, "/v1/question-answering", BODY, clients=3, requests=30)
    assert len(run.times) == 30 and run.refused == 0
    assert len(server.bodies) == 36  # two warm-up rounds of three, then the 30
    assert all(body == BODY for body in server.bodies)
    assert len(server.connections) == 3
    assert run.last["answer"] == "Ada"
    assert run.wall > 0 and run.client_cpu >= 0


def test_503s_are_counted_not_timed(stop):
    server, url = _serve(itertools.cycle([200, 503]))
    stop.append(server)
    run = run_load(url, "/v1/question-answering", BODY, clients=1, requests=10, warmup_rounds=1)
    # The warm-up took one 200; the run counts only its own ten.
    assert run.refused == 5 and len(run.times) == 5


def test_any_other_error_stops_the_run(stop):
    server, url = _serve(itertools.chain([200], itertools.repeat(500)))
    stop.append(server)
    with pytest.raises(HttpLoadError, match="HTTP 500"):
        run_load(url, "/v1/question-answering", BODY, clients=1, requests=3)


def test_a_connection_the_server_closes_is_opened_again(stop):
    server, url = _serve(itertools.repeat(200), close_every=2)
    stop.append(server)
    connection = Connection(url, "/v1/question-answering", BODY)

    async def four() -> list[dict[str, object]]:
        try:
            return [checked(await connection.post()) for _ in range(4)]
        finally:
            await connection.close()

    assert [reply["n"] for reply in asyncio.run(four())] == [1, 2, 3, 4]
    assert len(server.connections) == 2
