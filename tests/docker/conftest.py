"""End-to-end fixtures on the real Docker engine: the built images, and one model trained by the
training image into a named volume. Nothing here is simulated except OVMS, which cannot be pulled
here: the gRPC client is checked against the project's KServe v2 stand-in instead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .engine import IMAGES, copy_models, docker, engine_version, image, logs, remove, unique

if TYPE_CHECKING:
    from qatflow.core.artifacts import ModelVersion
    from qatflow.core.qa import Answer

# The whole flow (fine-tune, calibrate, QAT, export, gate, publish) on the embedded MiniLM in
# about two minutes on two idle cores: 48 examples make about 85 windows of 128 tokens, so five
# fine-tuning steps and two of QAT. What the model learns in that time is not the point (the
# tests compare the containers' answers with the same model run here), so the gate lets it pass.
SMALL_TRAINING = {
    "max_train_samples": 48,
    "max_eval_samples": 8,
    "max_seq_length": 128,
    "doc_stride": 32,
    "epochs": 1.0,
    "qat_epochs": 0.25,
    "calibration_samples": 4,
    "accuracy_tolerance": 100.0,
}


def small_training_environment() -> dict[str, str]:
    from qatflow.training.config import TrainingSettings

    return {TrainingSettings.env_name(key): str(value) for key, value in SMALL_TRAINING.items()}


@pytest.fixture(scope="session")
def docker_engine() -> str:
    version = engine_version()
    if version is None:
        pytest.skip("no Docker engine answers: `make engine` starts one (as root)")
    return version


@pytest.fixture(scope="session")
def images(docker_engine: str) -> list[str]:
    missing = [
        image(name)
        for name in IMAGES
        if docker("image", "inspect", image(name), check=False).returncode != 0
    ]
    if missing:
        pytest.skip(
            f"not built: {', '.join(missing)}; `make local-images` builds them without registry "
            "access, `make images` with it"
        )
    return [image(name) for name in IMAGES]


@dataclass
class PublishedVolume:
    """A named volume the training image published into, and a copy of it on the host."""

    volume: str
    copy: Path
    version: ModelVersion
    seconds: float


@pytest.fixture(scope="session")
def published_volume(
    images: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PublishedVolume]:
    from qatflow.core.artifacts import find_latest

    volume = unique("models")
    trainer = unique("training")
    docker("volume", "create", volume)
    environment = [f"--env={key}={value}" for key, value in small_training_environment().items()]
    started = time.monotonic()
    try:
        result = docker(
            "run", "--name", trainer, "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges:true",
            "-v", f"{volume}:/models", *environment, image("training"),
            timeout=1200, check=False,
        )  # fmt: skip
        seconds = time.monotonic() - started
        assert result.returncode == 0, f"training exited {result.returncode}:\n{logs(trainer)}"
        copy = copy_models(trainer, tmp_path_factory.mktemp("published") / "models")
        version = find_latest(copy)
        assert version is not None, f"nothing published:\n{logs(trainer)}"
        yield PublishedVolume(volume, copy, version, seconds)
    finally:
        remove(trainer)
        docker("volume", "rm", "--force", volume, check=False)


@pytest.fixture(scope="session")
def questions() -> list[tuple[str, str]]:
    """Held-out questions of the embedded data set, with their contexts."""
    from qatflow.training import synthetic_qa

    return [
        (example.question, example.context) for example in synthetic_qa.generate("validation", 3, 0)
    ]


def reference_answers(
    version: ModelVersion, backend: str, questions: list[tuple[str, str]]
) -> list[Answer]:
    """The best answers computed outside any container: the same backend, in this process, on
    the files copied out of the volume, with one thread as the containers run it."""
    from qatflow.serving.backends import create_backend
    from qatflow.serving.backends.base import Question
    from qatflow.serving.settings import ServeSettings

    model = create_backend(ServeSettings(backend=backend, threads=1))
    model.load(version)
    try:
        return [answers[0] for answers in model.answer([Question(q, c) for q, c in questions])]
    finally:
        model.unload()


def assert_same_answers(got: list[dict], expected: list[Answer]) -> None:
    from tests.client.test_grpc_client import assert_same_answers as same

    same(got, expected)
