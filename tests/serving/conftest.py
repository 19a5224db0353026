"""Real service processes: ``python -m qatflow.serving`` (the containers' entry point) under
uvicorn on a free loopback port, watching a models directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import qatflow
from qatflow.core.artifacts import STAGING, ModelVersion
from qatflow.core.backends import SERVING_BACKENDS
from qatflow.local import free_port
from tests.conftest import PINNED_PRECISION

SERVICES_DIR = Path(qatflow.__file__).resolve().parent.parent
START_TIMEOUT = 180.0  # importing torch and compiling the model on a busy 2-core runner


class ServiceProcess:
    """One service; settings go in as QATFLOW_SERVE_* variables, as in the Helm chart."""

    def __init__(self, backend: str, models_dir: Path, log_path: Path, **settings: Any) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("QATFLOW_SERVE_")
        }
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(SERVICES_DIR), env.get("PYTHONPATH")])
        )
        env["HF_HUB_OFFLINE"] = "1"
        env["TOKENIZERS_PARALLELISM"] = "false"
        env["QATFLOW_SERVE_POLL_INTERVAL"] = "0.3"
        env["QATFLOW_SERVE_THREADS"] = "1"
        for key, value in settings.items():
            env["QATFLOW_SERVE_" + key.upper()] = str(value)
        command = [
            sys.executable,
            "-m",
            "qatflow.serving",
            "--backend",
            backend,
            "--models-dir",
            str(models_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self.client = httpx.Client(base_url=self.url, timeout=60.0)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(
        self, condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited ({self.process.returncode}):\n{self.log()}")
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def wait_live(self) -> None:
        self.wait_for(lambda: self.client.get("/v2/health/live").status_code == 200, "liveness")

    def wait_ready(self) -> None:
        self.wait_for(lambda: self.client.get("/v2/health/ready").status_code == 200, "readiness")

    def ask(self, body: Any) -> httpx.Response:
        return self.client.post("/v1/question-answering", json=body)

    def classify(self, body: Any) -> httpx.Response:
        return self.client.post("/v1/text-classification", json=body)

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def terminate(self, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        self._log.close()
        return self.process.returncode


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
