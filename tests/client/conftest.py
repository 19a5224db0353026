"""The two KServe v2 servers the gRPC client is tested against, each a real process on loopback
serving the published models: the OVMS stand-in (``tests/ovms_fixture_server.py``, which also
speaks TF-Serving) and MLServer with an OpenVINO runtime (``tests/mlserver_fixture``).

Each server serves the published model under its own name and under the names of the variants
a client meets in the wild (``ModelSpec``): no tensor metadata, a stated batch size, an unstated
batch limit, int32 inputs; typed-contents answers from the stand-in (MLServer answers in typed
contents only to typed requests); no version from MLServer (the stand-in, as OVMS, always has
one). A test picks one with the client's ``--served-name``.

A test asks for ``server_kind`` (both servers by default) or is parametrized over ``TARGETS``
(server, gRPC API); each server of a kind starts once per session, when first asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.mlserver_fixture.server import MLServerProcess
from tests.ovms_fixture_server import FixtureServer, LoopbackServer, ModelSpec, save_int32_model

SERVERS = {"ovms-stand-in": FixtureServer, "mlserver": MLServerProcess}
STAND_IN, MLSERVER = SERVERS
# (server, gRPC API) pairs; MLServer speaks KServe v2 only.
TARGETS = [(STAND_IN, "kserve"), (STAND_IN, "tfs"), (MLSERVER, "kserve")]
per_target = pytest.mark.parametrize(
    ("server_kind", "protocol"), TARGETS, ids=[f"{s}-{p}" for s, p in TARGETS]
)

# Served names of the variants (the local model is the published one in every case).
RENAMED = "served-qa"
BARE = "qa-no-metadata"
BATCH_2 = "qa-batch-2"
LIMIT_2 = "qa-limit-2"
TYPED = "qa-typed"
INT32 = "qa-int32"
UNVERSIONED = "qa-unversioned"
CLASSIFIER_BARE = "classifier-no-metadata"
CLASSIFIER_LIMIT_2 = "classifier-limit-2"


def start_server(kind: str, models: Path | list[ModelSpec], port: int = 0) -> LoopbackServer:
    """A started server of ``kind`` (a key of ``SERVERS``); stop it, or use it with ``with``."""
    return SERVERS[kind](models, port).start()


class ServerPool:
    """One server of each kind, started when first asked for, stopped at the end."""

    def __init__(self, specs: Callable[[str], list[ModelSpec]]) -> None:
        self.specs = specs
        self.servers: dict[str, LoopbackServer] = {}

    def get(self, kind: str) -> LoopbackServer:
        if kind not in self.servers:
            self.servers[kind] = start_server(kind, self.specs(kind))
        return self.servers[kind]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(params=list(SERVERS))
def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def qa_servers(published_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The published question-answering model and its variants."""
    path = Path(published_model.path).parent
    int32_dir = tmp_path_factory.mktemp("int32-models") / published_model.name
    save_int32_model(int32_dir / "1")

    def specs(kind: str) -> list[ModelSpec]:
        served = [
            ModelSpec(published_model.name, path),
            ModelSpec(RENAMED, path),
            ModelSpec(BARE, path, tensor_metadata=False),
            ModelSpec(BATCH_2, path, batch_size=2),
            ModelSpec(LIMIT_2, path, max_batch=2),
            ModelSpec(INT32, int32_dir),
        ]
        if kind == STAND_IN:
            return [*served, ModelSpec(TYPED, path, typed_outputs=True)]
        return [*served, ModelSpec(UNVERSIONED, path, versioned=False)]

    pool = ServerPool(specs)
    yield pool
    pool.stop()


@pytest.fixture()
def qa_server(qa_servers: ServerPool, server_kind: str) -> LoopbackServer:
    return qa_servers.get(server_kind)


@pytest.fixture(scope="session")
def classifier_servers(published_classifier) -> Iterator[ServerPool]:
    """The published text classifier and its variants."""
    path = Path(published_classifier.path).parent
    pool = ServerPool(
        lambda kind: [
            ModelSpec(published_classifier.name, path),
            ModelSpec(CLASSIFIER_BARE, path, tensor_metadata=False),
            ModelSpec(CLASSIFIER_LIMIT_2, path, max_batch=2),
        ]
    )
    yield pool
    pool.stop()


@pytest.fixture()
def classifier_server(classifier_servers: ServerPool, server_kind: str) -> LoopbackServer:
    return classifier_servers.get(server_kind)
