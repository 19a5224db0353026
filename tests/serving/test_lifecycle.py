"""The service's life on a shared volume: waiting for a model, following new versions, refusing
corrupted ones, shedding load and draining on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from qatflow.core.artifacts import ModelVersion
from qatflow.training import synthetic_qa

from .conftest import ServiceProcess, publish_copy

pytestmark = pytest.mark.slow


def served_version(service: ServiceProcess, name: str) -> int | None:
    response = service.client.get(f"/v2/models/{name}")
    return response.json()["version"] if response.status_code == 200 else None


def test_waits_for_a_model_follows_new_versions_and_refuses_corrupted_ones(
    published_model: ModelVersion, start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    service = start_service("onnxruntime", models_dir)
    name = published_model.name
    question = {
        "question": "Where does Thea Eckhart live?",
        "context": "Thea Eckhart lives in Velmora.",
    }

    service.wait_live()
    time.sleep(1.0)  # several polls of the empty directory
    assert service.client.get("/v2/health/ready").status_code == 503
    not_ready = service.ask(question)
    assert not_ready.status_code == 503
    assert "no model loaded" in not_ready.json()["error"]
    assert service.client.get(f"/v2/models/{name}").status_code == 503

    publish_copy(published_model, models_dir, 1, corrupt="onnx/model.onnx")
    service.wait_for(lambda: "refusing model" in service.log(), "the corrupted version 1 refused")
    assert "onnx/model.onnx checksum mismatch" in service.log()
    assert service.client.get("/v2/health/ready").status_code == 503

    publish_copy(published_model, models_dir, 2)  # no restart: the watcher picks it up
    service.wait_ready()
    assert served_version(service, name) == 2
    first = service.ask(question)
    assert first.status_code == 200

    publish_copy(published_model, models_dir, 3, corrupt="openvino_model.bin")
    service.wait_for(
        lambda: f"refusing model {name} version 3" in service.log(), "version 3 refused"
    )
    assert "still serving version 2" in service.log()
    assert served_version(service, name) == 2
    assert service.ask(question).json() == first.json()

    publish_copy(published_model, models_dir, 4)
    service.wait_for(lambda: served_version(service, name) == 4, "hot load of version 4")
    assert service.ask(question).json() == first.json()
    metrics = service.metrics()
    assert re.search(
        rf'qatflow_model_loads_total\{{[^}}]*model="{name}",result="refused"\}} 2.0', metrics
    )
    assert re.search(
        rf'qatflow_model_loads_total\{{[^}}]*model="{name}",result="loaded"\}} 2.0', metrics
    )
    assert service.log().count("refusing model") == 2  # refused once each, not at every poll


def slow_batch(count: int, sentences: int) -> dict:
    """A valid request that takes seconds: many long contexts make thousands of windows."""
    filler = " ".join(synthetic_qa.FILLER[i % len(synthetic_qa.FILLER)] for i in range(sentences))
    examples = synthetic_qa.generate("validation", count, 3)
    return {
        "inputs": [{"question": e.question, "context": filler + " " + e.context} for e in examples]
    }


def test_sheds_load_and_drains_in_flight_requests_on_sigterm(
    published_model: ModelVersion, start_service: Callable[..., ServiceProcess]
) -> None:
    service = start_service(
        "onnxruntime",
        published_model.path.parent.parent,
        max_concurrency=1,
        max_body_bytes=32 * 1024 * 1024,
        shutdown_timeout=120,
    )
    service.wait_ready()
    # Size the slow request from a measured one: about 8 s here, whatever the machine's speed.
    started = time.perf_counter()
    assert service.ask(slow_batch(4, 300)).status_code == 200
    seconds_per_sentence = (time.perf_counter() - started) / (4 * 300)
    sentences = max(50, int(8.0 / (seconds_per_sentence * 32)))
    body = json.dumps(slow_batch(32, sentences)).encode()
    result: dict[str, httpx.Response] = {}

    def send_slow_request() -> None:
        with httpx.Client(base_url=service.url, timeout=180.0) as client:
            result["slow"] = client.post(
                "/v1/question-answering", content=body, headers={"content-type": "application/json"}
            )

    sender = threading.Thread(target=send_slow_request)
    sender.start()
    service.wait_for(
        lambda: (
            re.search(r"qatflow_inferences_in_flight\{[^}]*\} 1\.0", service.metrics()) is not None
        ),
        "the slow request to start inferring",
        timeout=60,
    )

    busy = service.ask({"question": "Who?", "context": "Nobody."})
    assert busy.status_code == 503
    assert "busy" in busy.json()["error"]

    service.process.send_signal(signal.SIGTERM)
    refused = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not refused:
        try:
            with httpx.Client(base_url=service.url, timeout=2.0) as client:
                client.get("/v2/health/live")
        except httpx.TransportError:
            refused = True
        time.sleep(0.1)
    assert refused, "still accepting connections after SIGTERM"
    assert sender.is_alive(), "the slow request ended before the drain could be observed"

    sender.join(timeout=180)
    assert result["slow"].status_code == 200, result["slow"].text
    outputs = result["slow"].json()["outputs"]
    assert len(outputs) == 32
    assert service.process.wait(timeout=60) == 0
    log = service.log()
    assert "Waiting for connections to close" in log
    assert log.index("Waiting for connections to close") < log.index("model unloaded")
