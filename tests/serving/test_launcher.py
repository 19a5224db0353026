"""The one way qatflow local, the benchmark and the tests start a service: real processes, no
model needed (a bad setting, an empty models directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qatflow.serving.launcher import (
    LIVE_PATH,
    SOURCE_DIR,
    ServiceStartError,
    http_status,
    service_environment,
    start_service,
)


def test_settings_become_the_services_variables_and_the_callers_own_are_dropped() -> None:
    environ = {"PATH": "/bin", "QATFLOW_SERVE_THREADS": "7", "PYTHONPATH": "/elsewhere"}
    env = service_environment({"backend": "onnxruntime", "port": 9}, environ=environ)
    assert env["QATFLOW_SERVE_BACKEND"] == "onnxruntime" and env["QATFLOW_SERVE_PORT"] == "9"
    assert "QATFLOW_SERVE_THREADS" not in env and env["PATH"] == "/bin"
    assert env["PYTHONPATH"] == "/elsewhere" and env["HF_HUB_OFFLINE"] == "1"

    kept = service_environment({}, environ=environ, inherit_settings=True, source_path=True)
    assert kept["QATFLOW_SERVE_THREADS"] == "7"
    assert kept["PYTHONPATH"].split(os.pathsep) == [str(SOURCE_DIR), "/elsewhere"]


def test_a_service_that_exits_before_it_is_ready_says_so_with_its_log(tmp_path: Path) -> None:
    service = start_service(
        {"backend": "onnxruntime", "models_dir": tmp_path, "max_batch_size": 0},
        log_path=tmp_path / "service.log",
    )
    with pytest.raises(ServiceStartError, match=r"exited with 2 before readiness") as failure:
        service.wait_ready(120)
    assert "configuration error" in str(failure.value) and "max_batch_size" in str(failure.value)
    assert service.stop() == 2


def test_a_live_service_without_a_model_is_not_ready_and_stops_cleanly(tmp_path: Path) -> None:
    service = start_service(
        {"backend": "onnxruntime", "models_dir": tmp_path, "threads": 1},
        log_path=tmp_path / "service.log",
        log_tail=200,
    )
    try:
        service.wait_for(lambda: http_status(service.url + LIVE_PATH) == 200, "liveness", 120)
        with pytest.raises(ServiceStartError, match=r"timed out after 1s waiting for readiness"):
            service.wait_ready(1)
    finally:
        assert service.stop() == 0
