"""Faults in real processes: training killed at each stage, two publishers racing, a service
watching the volume through all of it, a truncated version, a gRPC server that dies mid-run
and SIGTERM with several requests in flight.

Already proven elsewhere and not repeated here (see docs/reliability.md): a run killed after
export (tests/training/test_pipeline.py), corrupted versions refused and a service started
before any model (tests/serving/test_lifecycle.py), one slow request drained on SIGTERM
(the same file), a gRPC server down before the client starts (tests/client/test_grpc_client.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from qatflow.core import artifacts
from qatflow.core.artifacts import ModelVersion
from qatflow.training import synthetic_qa
from tests.conftest import tiny_training_overrides
from tests.ovms_fixture_server import FixtureServer
from tests.serving.conftest import SERVICES_DIR, ServiceProcess
from tests.serving.test_lifecycle import served_version, slow_batch

from .conftest import SLOTS
from .credentials import findings

pytestmark = pytest.mark.slow

REPO = SERVICES_DIR.parent
# Credentials in the environment of every process, as a cluster's Secrets would put them there.
CANARIES = {
    "HF_TOKEN": "hf_" + "Q7xK2pL9mZ4vB8nC1" * 2,
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY",
    "QATFLOW_DATABASE_PASSWORD": "canary-password-5e1f",
}
QUESTION = {
    "question": "Where does Thea Eckhart live?",
    "context": "Thea Eckhart lives in Velmora.",
}


class TrainingRun:
    """``qatflow train`` in its own process; its log is read line by line as it is written."""

    def __init__(self, model_dir: Path, models_dir: Path, *, hold: Path | None = None, **extra):
        settings = {
            **tiny_training_overrides(model_dir, models_dir),
            "max_train_samples": 64,
            "max_eval_samples": 16,
            "epochs": 1.0,
            "qat_epochs": 0.1,
            **extra,
        }
        entry = ["-m", "qatflow.cli"] if hold is None else ["-m", f"{__package__}.held_publish"]
        command = [sys.executable, *entry, *([str(hold)] if hold else []), "train"]
        for key, value in settings.items():
            command += ["--set", f"{key}={value}"]
        path = os.pathsep.join([str(SERVICES_DIR), str(REPO), os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._read_all = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
        self._read_all.set()

    def line(self, pattern: str) -> str | None:
        return next((line for line in list(self.lines) if re.search(pattern, line)), None)

    def wait_for(self, pattern: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        while (found := self.line(pattern)) is None:
            if self._read_all.is_set():
                raise AssertionError(f"run ended before {pattern!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n{self.log()}")
            time.sleep(0.05)
        return found

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(60) == -signal.SIGKILL

    def finish(self, timeout: float = 600.0) -> int:
        return self.process.wait(timeout)

    def log(self) -> str:
        return "".join(self.lines)


def kill_each_at(runs: dict[str, TrainingRun], timeout: float = 300.0) -> None:
    """SIGKILL every run the moment its own log line appears (the runs go on side by side)."""
    deadline = time.monotonic() + timeout
    waiting = dict(runs)
    while waiting:
        for pattern, run in list(waiting.items()):
            if run.line(pattern) is not None:
                run.kill()
                del waiting[pattern]
            elif run.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {pattern!r}:\n{run.log()}")
        time.sleep(0.05)


def version_dirs(models_dir: Path, name: str) -> list[str]:
    root = models_dir / name
    return sorted(entry.name for entry in root.iterdir()) if root.is_dir() else []


def test_killed_runs_publish_nothing_and_racing_reruns_publish_distinct_versions(
    published_model: ModelVersion,  # built first: it compiles NNCF's extension for every run
    tiny_model_dir: Path,
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    name = published_model.name
    for variable, value in CANARIES.items():
        monkeypatch.setenv(variable, value)  # every process below inherits them
    service = start_service("onnxruntime", models_dir)

    # Three runs at once, each SIGKILLed at its own stage.
    killed = {
        r"fp32 step 2/": TrainingRun(tiny_model_dir, models_dir, log_every=1),
        r"\[7/9\] Export": TrainingRun(tiny_model_dir, models_dir),
        r"MANIFEST SEALED": TrainingRun(tiny_model_dir, models_dir, hold=tmp_path / "never"),
    }
    kill_each_at(killed)

    staging = models_dir / artifacts.STAGING
    leftovers = list(staging.iterdir())
    assert len(leftovers) == 2, leftovers  # the run killed in training had not staged anything
    sealed = [entry for entry in leftovers if (entry / artifacts.MANIFEST).is_file()]
    assert len(sealed) == 1, "the run killed inside publish left a complete, sealed model"
    assert version_dirs(models_dir, name) == []  # no partial version anywhere
    assert artifacts.find_latest(models_dir) is None
    assert artifacts.list_models(models_dir) == []
    service.wait_live()
    time.sleep(1.0)  # several polls of the directory with its leftovers
    assert service.client.get("/v2/health/ready").status_code == 503
    assert "loading model" not in service.log()

    # Two reruns sealed with the same version number, released to rename at the same instant.
    release = tmp_path / "release"
    racers = [TrainingRun(tiny_model_dir, models_dir, hold=release) for _ in range(2)]
    sealed_dirs = [Path(racer.wait_for("MANIFEST SEALED").split()[-1]) for racer in racers]
    claimed = [artifacts.read_json(path / artifacts.MANIFEST)["version"] for path in sealed_dirs]
    assert claimed == [1, 1], "both runs are about to take version 1"
    release.touch()
    assert [racer.finish() for racer in racers] == [0, 0], "\n".join(r.log() for r in racers)

    assert version_dirs(models_dir, name) == ["1", "2"]
    versions = [artifacts.open_version(models_dir, name, number) for number in (1, 2)]
    for version in versions:
        artifacts.verify(version)
        assert version.manifest["version"] == version.version
    published = sorted(re.search(r"published \S+ version (\d+)", r.log()).group(1) for r in racers)
    assert published == ["1", "2"]
    assert set(leftovers) <= set(staging.iterdir()), "a live run never deletes another's work"

    # The service that waited through all of it serves the newest version, without a restart.
    service.wait_for(lambda: served_version(service, name) == 2, "version 2 served")
    answer = service.ask(QUESTION)
    assert answer.status_code == 200

    # A truncated copy published as version 3 is refused; version 2 keeps answering.
    truncated = models_dir / artifacts.STAGING / uuid.uuid4().hex
    shutil.copytree(versions[1].path, truncated)
    weights = truncated / artifacts.ONNX_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    os.rename(truncated, models_dir / name / "3")
    service.wait_for(lambda: f"refusing model {name} version 3" in service.log(), "refusal")
    line = next(line for line in service.log().splitlines() if "refusing model" in line)
    assert re.search(r"onnx/model\.onnx has \d+ bytes, manifest says \d+", line), line
    assert "still serving version 2" in line
    assert served_version(service, name) == 2
    assert service.ask(QUESTION).json() == answer.json()

    # Neither the training runs nor the service wrote a credential from their environment.
    for log in [service.log(), *(run.log() for run in [*killed.values(), *racers])]:
        assert not [value for value in CANARIES.values() if value in log]
        assert findings(log) == []


def test_grpc_server_dying_mid_run_gives_bounded_retries_then_exit_4(
    published_model: ModelVersion, tmp_path: Path
) -> None:
    questions = tmp_path / "questions.jsonl"
    examples = synthetic_qa.generate("validation", 400, 2)
    questions.write_text(
        "".join(json.dumps({"question": e.question, "context": e.context}) + "\n" for e in examples)
    )
    server = FixtureServer(published_model.path.parent.parent).start()
    path = os.pathsep.join([str(SERVICES_DIR), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "qatflow.cli", "ask", "--grpc", server.address]
    command += ["--protocol", "kserve", "--models-dir", str(published_model.path.parent.parent)]
    command += ["--input", str(questions), "--json", "--retries", "2", "--timeout", "5"]
    client = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        assert client.stdout is not None
        answered = [client.stdout.readline() for _ in range(3)]
        server.process.send_signal(signal.SIGKILL)  # a crash, not a graceful stop
        rest, stderr = client.communicate(timeout=120)
    finally:
        client.kill()
        server.stop()
    # Retries are bounded by count (the run ends, within communicate's limit), not by a timing.
    assert client.returncode == 4, stderr
    assert "ServerUnavailableError" in stderr and "gave up after 3 attempts" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    printed = [json.loads(line) for line in answered + rest.splitlines()]
    assert 3 <= len(printed) < len(examples)
    assert all(set(item) == {"answer", "score", "start", "end"} for item in printed)


def test_sigterm_lets_every_in_flight_request_finish(
    published_model: ModelVersion, start_service: Callable[..., ServiceProcess]
) -> None:
    requests = 4
    service = start_service(
        "optimum",
        published_model.path.parent.parent,
        max_concurrency=SLOTS,
        max_body_bytes=32 * 1024 * 1024,
        shutdown_timeout=120,
    )
    service.wait_ready()
    started = time.perf_counter()
    assert service.ask(slow_batch(4, 100)).status_code == 200
    seconds_per_sentence = (time.perf_counter() - started) / (4 * 100)
    # Each request alone would take about 1.5 s; four side by side, several seconds.
    sentences = max(50, int(1.5 / (seconds_per_sentence * 8)))
    body = json.dumps(slow_batch(8, sentences)).encode()
    replies: dict[int, httpx.Response] = {}

    def send(index: int) -> None:
        with httpx.Client(base_url=service.url, timeout=300.0) as client:
            replies[index] = client.post(
                "/v1/question-answering", content=body, headers={"content-type": "application/json"}
            )

    senders = [threading.Thread(target=send, args=(i,)) for i in range(requests)]
    for sender in senders:
        sender.start()
    service.wait_for(
        lambda: (
            re.search(rf"qatflow_inferences_in_flight\{{[^}}]*\}} {requests}\.0", service.metrics())
            is not None
        ),
        f"{requests} requests inferring at once",
        timeout=60,
    )
    service.process.send_signal(signal.SIGTERM)
    assert all(sender.is_alive() for sender in senders), "a request ended before SIGTERM"
    for sender in senders:
        sender.join(timeout=300)
    assert sorted(replies) == list(range(requests))
    for reply in replies.values():
        assert reply.status_code == 200, reply.text[:300]
        assert len(reply.json()["outputs"]) == 8
    assert len({reply.content for reply in replies.values()}) == 1  # the same answers each time
    assert service.process.wait(timeout=60) == 0
    log = service.log()
    assert log.index("Waiting for connections to close") < log.index("model unloaded")
