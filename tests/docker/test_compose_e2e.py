"""``docker-compose.yaml`` brought up for real with the built images: training, then both HTTP
profiles healthy and answering, then torn down; a failed training starts no service; the ``ovms``
profile up to the official image, which cannot be pulled here.

Runs with whichever Compose exists: the v2 plugin (``docker compose``) or Debian's v1
(``docker-compose``). Variables and an override file adjust the project as a user would: free
ports, and training settings small enough for a test."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import yaml

from .conftest import assert_same_answers, reference_answers, small_training_environment
from .engine import (
    START_TIMEOUT,
    ComposeProject,
    ask_with_client_image,
    compose_command,
    copy_models,
    docker,
    image,
    inspect,
    logs,
)

if TYPE_CHECKING:
    from qatflow.core.artifacts import ModelVersion

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
HTTP_PROFILES = {"optimum": "QATFLOW_OPTIMUM_PORT", "onnxruntime": "QATFLOW_ONNXRUNTIME_PORT"}
# docker pull's words when the registry cannot be reached at all (not: the image does not exist).
UNREACHABLE = re.compile(
    r"no such host|dial tcp|i/o timeout|connection refused|network is unreachable|"
    r"TLS handshake timeout|Client\.Timeout|temporary failure in name resolution",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def compose(images: list[str]) -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` (v2) nor `docker-compose` (v1) is installed")
    return command


def write_override(path: Path, training: dict[str, str], services: list[str]) -> Path:
    """The Compose override a user would write: training settings, one inference thread."""
    override = {
        "services": {
            "training": {"environment": training},
            **{service: {"environment": {"QATFLOW_SERVE_THREADS": "1"}} for service in services},
        }
    }
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    return path


def wait_healthy(container: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(container)["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return
        assert state["Status"] in ("created", "running"), f"{container}:\n{logs(container)}"
        time.sleep(2)
    raise AssertionError(f"{container} not healthy after {timeout:.0f}s:\n{logs(container)}")


@pytest.fixture(scope="module")
def http_project(compose, tmp_path_factory) -> Iterator[ComposeProject]:
    """The optimum and onnxruntime profiles brought up together: training runs once, then both."""
    from qatflow.local import free_port

    directory = tmp_path_factory.mktemp("compose")
    override = write_override(
        directory / "override.yaml", small_training_environment(), list(HTTP_PROFILES)
    )
    ports = {variable: str(free_port()) for variable in HTTP_PROFILES.values()}
    ports.update(QATFLOW_OVMS_GRPC_PORT=str(free_port()), QATFLOW_OVMS_REST_PORT=str(free_port()))
    project = ComposeProject(compose, override, ports, list(HTTP_PROFILES))
    try:
        result = project.run("up", "--detach")
        assert result.returncode == 0, result.stdout + result.stderr
        yield project
    finally:
        project.down()


@pytest.fixture(scope="module")
def compose_version(http_project, tmp_path_factory) -> ModelVersion:
    """What the project's training container published, copied out of it."""
    from qatflow.core.artifacts import find_latest

    training = http_project.container("training")
    assert inspect(training)["State"]["ExitCode"] == 0, logs(training)
    version = find_latest(copy_models(training, tmp_path_factory.mktemp("compose") / "models"))
    assert version is not None, logs(training)
    return version


def test_training_completes_then_both_services_come_up_healthy_and_answer(
    http_project, compose_version, questions
):
    for backend, port_variable in HTTP_PROFILES.items():
        wait_healthy(http_project.container(backend))
        url = f"http://127.0.0.1:{http_project.environ[port_variable]}/v1/question-answering"
        replies = [
            httpx.post(url, json={"question": question, "context": context}, timeout=60)
            for question, context in questions
        ]
        assert [reply.status_code for reply in replies] == [200] * len(questions)
        expected = reference_answers(compose_version, backend, questions)
        assert_same_answers([reply.json() for reply in replies], expected)


@pytest.mark.registry_image
def test_ovms_profile_up_to_the_image_it_cannot_pull(http_project, compose_version, questions):
    """In the project whose training already published: ``ovms-config`` writes OVMS's
    configuration into the volume, then ``ovms`` starts the official image, which needs its
    registry. Without one, the test stops there and says so."""
    from qatflow.ovms.config import OVMS_IMAGE, model_server_config

    http_project.profiles.append("ovms")
    try:
        assert http_project.run("config", "--quiet").returncode == 0
        written = http_project.run("run", "--rm", "--no-deps", "ovms-config")
        assert written.returncode == 0, written.stdout + written.stderr
        config = docker(
            "run", "--rm", "-v", f"{http_project.volume}:/models:ro", "--entrypoint", "cat",
            image("client"), "/models/.ovms/config.json",
        ).stdout  # fmt: skip
        assert json.loads(config) == model_server_config(
            compose_version.name, models_mount="/models"
        )

        pulled = docker("pull", OVMS_IMAGE, timeout=900, check=False)
        if pulled.returncode != 0:
            assert UNREACHABLE.search(pulled.stderr), f"pulling {OVMS_IMAGE}:\n{pulled.stderr}"
            pytest.skip(
                "the ovms profile was checked up to its image: Compose accepts it and "
                "ovms-config wrote the configuration OVMS reads into the models volume, but "
                f"{OVMS_IMAGE} cannot be pulled here (registry unreachable: "
                f"{pulled.stderr.strip().splitlines()[-1]})"
            )
        started = http_project.run("up", "--detach", "--no-deps", "ovms")
        assert started.returncode == 0, started.stdout + started.stderr
        question, context = questions[0]
        answers = ask_with_client_image(
            "--grpc", f"127.0.0.1:{http_project.environ['QATFLOW_OVMS_GRPC_PORT']}",
            "--model", compose_version.name, "--models-dir", "/models", "--retries", "60",
            "--question", question, "--context", context,
            volume=http_project.volume,
        )  # fmt: skip
        expected = reference_answers(compose_version, "optimum", questions)
        assert_same_answers(answers, expected[:1])
    finally:
        http_project.profiles.remove("ovms")


def test_down_removes_the_projects_containers_and_volume(http_project):
    assert http_project.containers() and http_project.volumes() == [http_project.volume]
    result = http_project.down()
    assert result.returncode == 0, result.stdout + result.stderr
    assert http_project.containers() == []
    assert http_project.volumes() == []


def test_failed_training_exits_non_zero_and_starts_no_service(compose, tmp_path):
    """A setting out of range: the training container exits with the bad-configuration code,
    and the service that depends on its success is never started."""
    from qatflow.local import free_port
    from qatflow.training.cli import EXIT_BAD_CONFIG
    from qatflow.training.config import TrainingSettings

    training = {TrainingSettings.env_name("max_seq_length"): "8"}  # at least 32
    override = write_override(tmp_path / "override.yaml", training, ["onnxruntime"])
    project = ComposeProject(
        compose, override, {"QATFLOW_ONNXRUNTIME_PORT": str(free_port())}, ["onnxruntime"]
    )
    try:
        result = project.run("up", "--detach")
        assert result.returncode != 0, result.stdout + result.stderr
        trainer = inspect(project.container("training"))["State"]
        assert trainer["ExitCode"] == EXIT_BAD_CONFIG, logs(project.container("training"))
        for container in project.containers("onnxruntime"):
            state = inspect(container)["State"]
            assert state["Status"] == "created" and not state["Running"], state
            assert state["StartedAt"].startswith("0001-01-01"), "it was started at some point"
    finally:
        project.down()
