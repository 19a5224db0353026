"""The chart's containers run for real, on loopback: the inference Deployment's rendered command
and environment start the HTTP service on a published model, and the `helm test` pod's rendered
command asks it a question (or has it classify a text); a wrong answer or label, or a missing
service, fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qatflow.core.backends import SERVING_BACKENDS
from qatflow.serving.launcher import ServiceProcess

from .conftest import REPO, Rendered, render
from .test_chart_objects import container, env_of

pytestmark = [pytest.mark.chart, pytest.mark.slow]

START_TIMEOUT = 180.0


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


def _local_env(rendered_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QATFLOW_")}
    env.update(rendered_env)
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO / "services"), env.get("PYTHONPATH")])
    )
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run_test_pod(
    rendered: Rendered, url: str, expected: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    pod = rendered.test_pod()
    assert pod is not None
    ask = container(pod)
    assert ask["command"][:2] == ["python", "-c"] and ask["args"][0] == "--url"
    env = _local_env(env_of(ask), tmp_path)
    env.update(expected)
    command = [sys.executable, "-c", ask["command"][2], "--url", url]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=150)


@contextmanager
def _serving(rendered: Rendered, model: Any, port: int, tmp_path: Path) -> Iterator[str]:
    """The rendered Deployment's command and environment, run here on the fixture's model."""
    server = container(rendered.deployment())
    env = _local_env(env_of(server), tmp_path)
    # Where the pod mounts the volume, this machine has the fixture's models directory.
    env["QATFLOW_SERVE_MODELS_DIR"] = str(model.path.parent.parent)
    env["QATFLOW_SERVE_HOST"] = "127.0.0.1"
    command = [sys.executable if part == "python" else part for part in server["command"]]
    service = ServiceProcess(command, env, f"http://127.0.0.1:{port}", tmp_path / "service.log")
    try:
        service.wait_ready(START_TIMEOUT, path=server["readinessProbe"]["httpGet"]["path"])
        yield service.url
    finally:
        service.stop(timeout=60)


def _render(model: Any, port: int, backend: str, *extra: str) -> Rendered:
    return render(
        None,
        "--set", f"inference.backend={backend}",
        "--set", f"model.name={model.name}",
        "--set", f"inference.port={port}",
        "--set", "inference.settings.threads=1",
        *extra,
    )  # fmt: skip


@pytest.mark.parametrize("backend", SERVING_BACKENDS)
def test_helm_test_pod_passes_on_the_right_answer_only(
    backend: str, published_model: Any, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    port = free_port()
    rendered = _render(published_model, port, backend)
    with _serving(rendered, published_model, port, tmp_path) as url:
        pod_env = env_of(container(rendered.test_pod() or {}))
        given = _post(
            url + "/v1/question-answering",
            {"question": pod_env["QUESTION"], "context": pod_env["CONTEXT"]},
        )["answer"]

        passed = _run_test_pod(rendered, url, {"EXPECTED_ANSWER": given}, tmp_path)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert f"PASS: answer {given!r}" in passed.stdout

        wrong = _run_test_pod(rendered, url, {"EXPECTED_ANSWER": given + " and more"}, tmp_path)
        assert wrong.returncode != 0
        assert "FAIL: answer" in wrong.stderr

    down = _run_test_pod(rendered, url, {"EXPECTED_ANSWER": given}, tmp_path)
    assert down.returncode != 0, "no service, no pass"
    assert "FAIL: qatflow ask exited" in down.stderr


def test_helm_test_pod_checks_the_label_of_a_classifier(
    published_classifier: Any, tmp_path: Path
) -> None:
    from tests.conftest import free_port

    port = free_port()
    task = "training.settings.task=text-classification"
    rendered = _render(published_classifier, port, "onnxruntime", "--set", task)
    with _serving(rendered, published_classifier, port, tmp_path) as url:
        pod_env = env_of(container(rendered.test_pod() or {}))
        assert "QUESTION" not in pod_env
        given = _post(url + "/v1/text-classification", {"text": pod_env["TEXT"]})["label"]
        other = next(label for label in ("negative", "positive") if label != given)

        passed = _run_test_pod(rendered, url, {"EXPECTED_LABEL": given}, tmp_path)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert f"PASS: label {given!r}" in passed.stdout and "--text" in passed.stdout

        wrong = _run_test_pod(rendered, url, {"EXPECTED_LABEL": other}, tmp_path)
        assert wrong.returncode != 0
        assert f"FAIL: label {given!r}, expected {other!r}" in wrong.stderr
