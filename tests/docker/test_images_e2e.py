"""The four images built and run for real on the Docker engine: training publishes into a named
volume, each HTTP service runs hardened and answers as the model does, the client image asks over
HTTP and gRPC, and a service without a model waits, not-ready, instead of crash-looping.

Simulated: OpenVINO Model Server, which cannot be pulled here; the client's gRPC path is checked
against the project's KServe v2 stand-in (``tests/ovms_fixture_server.py``) on the host."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest

from qatflow.core.backends import SERVING_BACKENDS

from .conftest import PublishedVolume, assert_same_answers, reference_answers
from .engine import (
    REPO,
    RUNTIME_USER,
    ServiceContainer,
    ask_with_client_image,
    docker,
    find_not_owned_by_runtime_user,
    image,
    inspect,
    logs,
    unique,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
BACKENDS = SERVING_BACKENDS


def size_budgets() -> dict[str, float]:
    """The budgets ``make images`` reports against (dockerfiles/image_sizes.py)."""
    spec = importlib.util.spec_from_file_location(
        "image_sizes", REPO / "dockerfiles/image_sizes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    budgets: dict[str, float] = module.BUDGETS
    return budgets


def test_images_are_within_their_size_budgets(images):
    sizes = {
        name: int(docker("image", "inspect", "--format", "{{.Size}}", image(name)).stdout)
        for name in size_budgets()
    }
    report = ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in sizes.items())
    over = [name for name, budget in size_budgets().items() if sizes[name] > budget]
    assert not over, f"over budget: {over} ({report})"


def test_training_publishes_into_the_volume_as_the_runtime_user(published_volume):
    version = published_volume.version
    assert version.ir_path.exists() and (version.path / "manifest.json").exists()
    assert version.manifest["task"] == "question-answering"
    assert find_not_owned_by_runtime_user(published_volume.volume) == []


@pytest.fixture(scope="module")
def services(published_volume: PublishedVolume) -> Iterator[dict[str, ServiceContainer]]:
    """Both HTTP service images serving the volume, started side by side to share the wait."""
    running = {
        backend: ServiceContainer(backend, ["-v", f"{published_volume.volume}:/models:ro"])
        for backend in BACKENDS
    }
    try:
        for service in running.values():
            service.wait_ready()
        yield running
    finally:
        for service in running.values():
            service.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_service_runs_read_only_non_root_without_capabilities(services, backend):
    name = services[backend].name
    details = inspect(name)
    assert details["Config"]["User"] == RUNTIME_USER
    assert details["HostConfig"]["ReadonlyRootfs"] is True
    assert details["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in details["HostConfig"]["SecurityOpt"]
    (models,) = [mount for mount in details["Mounts"] if mount["Destination"] == "/models"]
    assert models["Type"] == "volume" and models["RW"] is False

    assert docker("exec", name, "id", "-u").stdout.strip() == RUNTIME_USER.split(":")[0]
    for path in ("/opt/venv/written", "/models/written"):
        result = docker("exec", name, "touch", path, check=False)
        assert result.returncode != 0 and "Read-only file system" in result.stderr, path
    assert docker("exec", name, "touch", "/tmp/written").returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_service_answers_as_the_model_does(services, published_volume, questions, backend):
    expected = reference_answers(published_volume.version, backend, questions)
    replies = [services[backend].ask(question, context) for question, context in questions]
    assert [reply.status_code for reply in replies] == [200] * len(questions)
    answers = [reply.json() for reply in replies]
    assert_same_answers(answers, expected)
    for answer, (_, context) in zip(answers, questions, strict=True):
        assert answer["answer"] == context[answer["start"] : answer["end"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_client_image_asks_over_http(services, published_volume, questions, backend):
    expected = reference_answers(published_volume.version, backend, questions)
    question, context = questions[0]
    answers = ask_with_client_image(
        "--url", services[backend].url, "--question", question, "--context", context
    )
    assert_same_answers(answers, expected[:1])


def test_client_image_asks_over_grpc_kserve(published_volume, questions):
    """Against the KServe v2 stand-in serving the volume's model from the host (OVMS runs the
    same IR with OpenVINO, as the optimum backend does)."""
    from tests.ovms_fixture_server import FixtureServer

    version = published_volume.version
    expected = reference_answers(version, "optimum", questions)
    question, context = questions[0]
    with FixtureServer(published_volume.copy) as server:
        answers = ask_with_client_image(
            "--grpc", server.address, "--protocol", "kserve", "--model", version.name,
            "--models-dir", "/models", "--question", question, "--context", context,
            volume=published_volume.volume,
        )  # fmt: skip
    assert_same_answers(answers, expected[:1])


@pytest.mark.parametrize(
    ("backend", "models"),
    [("optimum", "no volume"), ("onnxruntime", "an empty volume")],
)
def test_service_without_a_model_stays_up_and_not_ready(images, questions, backend, models):
    """A restart policy is set, as in Compose: a crash would show as a restart."""
    volume = unique("empty") if models == "an empty volume" else None
    mounts = ["-v", f"{volume}:/models:ro"] if volume else []
    service = ServiceContainer(backend, mounts, restart="unless-stopped")
    try:
        service.wait_live()
        question, context = questions[0]
        for _ in range(8):  # several of the service's one-second looks for a model
            assert service.status("/v2/health/ready") == 503
            refused = service.ask(question, context)
            assert refused.status_code == 503 and "error" in refused.json()
            time.sleep(1)
        state = inspect(service.name)
        assert state["State"]["Running"] and state["RestartCount"] == 0, logs(service.name)
        assert "no published version" in logs(service.name)
    finally:
        service.stop()
        if volume:
            docker("volume", "rm", "--force", volume, check=False)
