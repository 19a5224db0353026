"""Services for the reliability tests: both backends on the published model, with as many
inference slots as the load test has clients and the precision it compares answers at (the
defaults everywhere else)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qatflow.core.artifacts import ModelVersion
from qatflow.core.backends import SERVING_BACKENDS
from tests.reliability.load import PRECISION
from tests.serving.conftest import ServiceProcess, start_service  # noqa: F401  (fixture)

BACKENDS = SERVING_BACKENDS
# 16 load-test clients must not be refused; every other limit keeps its default.
SLOTS = 16


@pytest.fixture(scope="session")
def hardened_services(
    published_model: ModelVersion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("reliability-logs")
    models_dir = published_model.path.parent.parent
    running = {
        backend: ServiceProcess(
            backend,
            models_dir,
            logs / f"{backend}.log",
            model_name=published_model.name,
            max_concurrency=SLOTS,
            inference_precision=PRECISION,
        )
        for backend in BACKENDS
    }
    try:
        for service in running.values():
            service.wait_ready()
        yield running
    finally:
        for service in running.values():
            service.terminate()
