"""Real service processes: ``python -m qatflow.serving`` (the containers' entry point) under
uvicorn on a free loopback port, watching a models directory."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qatflow.core.artifacts import STAGING, ModelVersion
from qatflow.core.backends import SERVING_BACKENDS
from qatflow.serving import launcher
from qatflow.serving.launcher import (
    LIVE_PATH,
    SERVING_COMMAND,
    SOURCE_DIR,
    free_port,
    service_environment,
)
from tests.conftest import PINNED_PRECISION

SERVICES_DIR = SOURCE_DIR
START_TIMEOUT = 180.0  # importing torch and compiling the model on a busy 2-core runner


class ServiceProcess(launcher.ServiceProcess):
    """One service; settings go in as QATFLOW_SERVE_* variables, as in the Helm chart."""

    def __init__(self, backend: str, models_dir: Path, log_path: Path, **settings: Any) -> None:
        self.backend = backend
        self.port = free_port()
        env = service_environment(
            {
                "backend": backend,
                "models_dir": models_dir,
                "host": "127.0.0.1",
                "port": self.port,
                "poll_interval": 0.3,
                "threads": 1,
                **settings,
            },
            source_path=True,
        )
        super().__init__(SERVING_COMMAND, env, f"http://127.0.0.1:{self.port}", log_path)
        self.client = httpx.Client(base_url=self.url, timeout=60.0)

    def wait_for(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float = START_TIMEOUT,
        **poll: Any,
    ) -> None:
        """Poll ``condition`` (which may use ``self.client``) until it holds."""
        poll = {"interval": 0.1, "retry_on": (httpx.TransportError, OSError), **poll}
        super().wait_for(condition, what, timeout, **poll)

    def wait_live(self) -> None:
        self.wait_for(lambda: self.client.get(LIVE_PATH).status_code == 200, "liveness")

    def wait_ready(self, timeout: float = START_TIMEOUT, **poll: Any) -> None:
        super().wait_ready(timeout, **{"interval": 0.1, **poll})

    def ask(self, body: Any) -> httpx.Response:
        return self.client.post("/v1/question-answering", json=body)

    def classify(self, body: Any) -> httpx.Response:
        return self.client.post("/v1/text-classification", json=body)

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def terminate(self, timeout: float = 60.0) -> int:
        code = self.stop(timeout)
        self.client.close()
        return code


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services for one test; every one still running is stopped afterwards."""
    started: list[ServiceProcess] = []

    def start(backend: str, models_dir: Path, **settings: Any) -> ServiceProcess:
        service = ServiceProcess(
            backend, models_dir, tmp_path / f"{backend}-{len(started)}.log", **settings
        )
        started.append(service)
        return service

    yield start
    for service in started:
        service.terminate()


def both_backends(
    version: ModelVersion, tmp_path_factory: pytest.TempPathFactory, **settings: Any
) -> Iterator[dict[str, ServiceProcess]]:
    """Both backends serving ``version``, started side by side to share the wait; the tests
    compare them with each other and with plain OpenVINO, so by default at the pinned precision
    (see ``PINNED_PRECISION``)."""
    logs = tmp_path_factory.mktemp(f"{version.name}-service-logs")
    models_dir = version.path.parent.parent
    settings = {"inference_precision": PINNED_PRECISION, **settings}
    running = {
        backend: ServiceProcess(
            backend, models_dir, logs / f"{backend}.log", model_name=version.name, **settings
        )
        for backend in SERVING_BACKENDS
    }
    try:
        for service in running.values():
            service.wait_ready()
        yield running
    finally:
        for service in running.values():
            service.terminate()


@pytest.fixture(scope="session")
def services(
    published_model: ModelVersion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """Both backends serving the published question-answering model."""
    yield from both_backends(published_model, tmp_path_factory)


@pytest.fixture(scope="session")
def classifier_services(
    published_classifier: ModelVersion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """Both backends serving the published text-classification model."""
    yield from both_backends(published_classifier, tmp_path_factory)


def publish_copy(
    source: ModelVersion, models_dir: Path, version: int, corrupt: str | None = None
) -> Path:
    """Publish a copy of ``source`` as ``version`` the way the contract says: stage, then rename.

    ``corrupt`` names a file whose middle byte is flipped after the manifest was sealed.
    """
    staged = models_dir / STAGING / uuid.uuid4().hex
    shutil.copytree(source.path, staged)
    if corrupt is not None:
        target = staged / corrupt
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    destination = models_dir / source.name / str(version)
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, destination)
    return destination
