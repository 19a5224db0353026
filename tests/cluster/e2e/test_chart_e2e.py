"""The chart's whole flow on a real node: ``helm install qatchart helm/qat`` trains in its
pre-install hook Job, in a real pod that publishes to the claim; the Deployment's pod becomes
Ready on that model and answers through ``kubectl port-forward``; a second release installed
with ``--no-hooks`` serves the same claim with the other HTTP backend; ``helm uninstall``
removes both services.

Simulated: nothing. Kubernetes, the kubelet, containerd, runc, the CNI bridge, helm, kubectl and
the images are the real ones; training is made small (tests/docker's ``SMALL_TRAINING``).
Not run: OVMS, whose image cannot be pulled here (its test goes as far as the kubelet's pull and
says so), and ``helm test``, whose pod asks the Service by its DNS name: there is no kube-proxy
or DNS on this cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from qatflow.cluster import problems
from qatflow.core.outcome import EXIT_PUBLISHED
from qatflow.local import free_port
from tests.chart.conftest import chart_values
from tests.docker.conftest import SMALL_TRAINING, assert_same_answers, reference_answers
from tests.docker.engine import RUNTIME_USER
from tests.docker.test_compose_e2e import UNREACHABLE

from ..conftest import CHART, TOOLS, VENV_BIN, Cluster, Namespace, new_namespace, wait_for
from .node import NODE_NAME, RealNode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

TRAINED = "qatchart"  # trains in its hook and serves with the first backend
SERVING = "qatserve"  # inference only, on the claim TRAINED trained into
BACKENDS = {TRAINED: "optimum", SERVING: "onnxruntime"}
OVMS = "qatovms"
MODEL = chart_values(None)["model"]["name"]
CLAIM = f"{TRAINED}-models"
UID = int(RUNTIME_USER.split(":")[0])
INSTALL_TIMEOUT = "15m"

# The chart's defaults but what a 2-core node needs: small training, requests that let the
# training pod and three services fit, images only from the node, and one inference thread, as
# the reference answers are computed.
VALUES: dict[str, Any] = {
    "image": {"pullPolicy": "Never"},
    "training": {
        "settings": SMALL_TRAINING,
        "activeDeadlineSeconds": 840,
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "8Gi"},
        },
    },
    "inference": {
        "settings": {"threads": 1, "poll_interval": 1.0},
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "3Gi"},
        },
        "probes": {
            "startup": {"periodSeconds": 2, "failureThreshold": 150},
            "readiness": {"periodSeconds": 2},
        },
    },
}


@dataclass
class Flow:
    namespace: Namespace
    # The node directory behind the claim: what training published, read from the host.
    models: Path
    installed: subprocess.CompletedProcess[str]
    values: Path


@pytest.fixture(scope="module")
def flow(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """Both releases installed in one namespace: TRAINED with its hook, then SERVING."""
    from kubernetes import client

    directory = tmp_path_factory.mktemp("chart-e2e")
    models = directory / "models"
    models.mkdir()
    os.chown(models, UID, UID)  # a hostPath volume gets no fsGroup
    values = directory / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    core = client.CoreV1Api(cluster.client)
    with new_namespace(cluster, "chart-e2e", directory) as namespace:
        volume = f"{namespace.name}-models"
        # What a provisioner would make for the chart's claim: a node directory, bound to it.
        core.create_persistent_volume(
            {
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "2Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "claimRef": {"namespace": namespace.name, "name": CLAIM},
                    "hostPath": {"path": str(models), "type": "Directory"},
                },
            }
        )
        try:
            installed = namespace.helm(
                "install", TRAINED, str(CHART), "-f", str(values),
                "--set", f"inference.backend={BACKENDS[TRAINED]}",
                "--timeout", INSTALL_TIMEOUT, timeout=1000, check=False,
            )  # fmt: skip
            if installed.returncode != 0:
                pytest.fail(
                    f"helm install {TRAINED} failed:\n{installed.stdout}\n{installed.stderr}",
                    pytrace=False,
                )
            namespace.helm(
                "install", SERVING, str(CHART), "--no-hooks", "-f", str(values),
                "--set", "training.enabled=false",
                "--set", f"persistence.existingClaim={CLAIM}",
                "--set", f"inference.backend={BACKENDS[SERVING]}",
            )  # fmt: skip
            yield Flow(namespace, models, installed, values)
        finally:
            for release in namespace.helm("list", "-q", check=False).stdout.split():
                namespace.helm("uninstall", release, "--wait", timeout=180, check=False)
            core.delete_persistent_volume(volume)


def test_the_hook_trains_in_a_real_pod_and_publishes_to_the_claim(flow: Flow) -> None:
    from qatflow.core.artifacts import find_latest

    assert "STATUS: deployed" in flow.installed.stdout
    namespace = flow.namespace
    (job,) = namespace.objects("jobs")
    assert job["metadata"]["name"] == f"{TRAINED}-training"
    assert {c["type"]: c["status"] for c in job["status"]["conditions"]}["Complete"] == "True"
    (pod,) = namespace.objects("pods", f"batch.kubernetes.io/job-name={TRAINED}-training")
    assert pod["spec"]["nodeName"] == NODE_NAME
    (container,) = pod["status"]["containerStatuses"]
    assert container["containerID"].startswith("containerd://")
    terminated = container["state"]["terminated"]
    assert terminated["exitCode"] == EXIT_PUBLISHED
    # How the run ended, as the training command wrote it: what `qatflow status` reads.
    outcome = json.loads(terminated["message"])
    assert (outcome["model"], outcome["version"]) == (MODEL, 1)

    # The accuracy summary, read as the docs say: through the API server from the kubelet.
    logs = namespace.kubectl("logs", f"job/{TRAINED}-training").stdout
    assert "[1/" in logs
    (summary,) = re.findall(r"summary: (qat \| baseline f1 .*)", logs)
    assert summary == outcome["summary"]
    assert re.search(r"int8 \d+\.\d\d \| int8 vs fp32 [+-]\d+\.\d\d", summary)
    assert f"published {MODEL} version 1" in logs

    # On the claim's volume, as the training image's user, in the artifact contract's layout.
    version = find_latest(flow.models)
    assert version is not None and (version.name, version.version) == (MODEL, 1)
    assert version.manifest["task"] == "question-answering"
    assert {path.stat().st_uid for path in version.path.rglob("*")} == {UID}


def test_status_follows_the_release_to_its_service(flow: Flow) -> None:
    """``qatflow status`` as docs/kubernetes.md runs it, against the real cluster: the outcome
    the training pod reported, then the service once its pod is Ready."""
    namespace = flow.namespace
    (pod,) = namespace.objects("pods", f"batch.kubernetes.io/job-name={TRAINED}-training")
    outcome = json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])

    result = status(namespace, TRAINED)

    assert result.returncode == problems.EXIT_READY, result.stdout + result.stderr
    assert f"==> accuracy summary: {outcome['summary']}" in result.stdout
    backend = BACKENDS[TRAINED]
    assert f"Deployment {TRAINED}-{backend} is available ({backend})" in result.stdout


@pytest.mark.parametrize("release", list(BACKENDS))
def test_the_service_answers_through_port_forward(flow: Flow, questions, release: str) -> None:
    from qatflow.core.artifacts import find_latest

    backend = BACKENDS[release]
    namespace = flow.namespace
    rollout = namespace.kubectl(
        "rollout", "status", f"deployment/{release}-{backend}", "--timeout=420s"
    )
    assert "successfully rolled out" in rollout.stdout
    (pod,) = namespace.objects(
        "pods", f"app.kubernetes.io/instance={release},app.kubernetes.io/component=inference"
    )
    assert pod["spec"]["nodeName"] == NODE_NAME
    (models,) = [volume for volume in pod["spec"]["volumes"] if volume["name"] == "models"]
    assert models["persistentVolumeClaim"]["claimName"] == CLAIM

    pairs = flow.models.parent / f"questions-{release}.jsonl"
    pairs.write_text(
        "".join(json.dumps({"question": q, "context": c}) + "\n" for q, c in questions)
    )
    with port_forward(namespace, f"service/{release}-{backend}", 8080) as port:
        asked = namespace.run(
            str(VENV_BIN / "qatflow"), "ask", "--url", f"http://127.0.0.1:{port}",
            "--input", str(pairs), "--json",
        )  # fmt: skip
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    version = find_latest(flow.models)
    assert version is not None
    assert_same_answers(answers, reference_answers(version, backend, questions))


@pytest.mark.registry_image
def test_ovms_up_to_the_image_it_cannot_pull(flow: Flow, questions) -> None:
    """An inference-only OVMS release on the same claim: the pod is scheduled with its
    configuration and the model volume, and the kubelet pulls the official image. Without a
    registry the test stops there and says so."""
    from qatflow.core.artifacts import find_latest
    from qatflow.ovms.config import OVMS_IMAGE

    namespace = flow.namespace
    namespace.helm(
        "install", OVMS, str(CHART), "--no-hooks", "-f", str(flow.values),
        "--set", "training.enabled=false",
        "--set", f"persistence.existingClaim={CLAIM}",
        "--set", "inference.backend=ovms",
        "--set", "image.pullPolicy=IfNotPresent",  # the qatflow images are not pulled: none run
    )  # fmt: skip
    selector = f"app.kubernetes.io/instance={OVMS},app.kubernetes.io/component=inference"

    def pulled_or_failed() -> dict[str, Any] | None:
        for pod in namespace.objects("pods", selector):
            for status in pod["status"].get("containerStatuses", ()):
                waiting = status["state"].get("waiting", {})
                if status["ready"] or waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                    return dict(status)
        return None

    container = wait_for(pulled_or_failed, 600, f"the kubelet to pull {OVMS_IMAGE}")
    if not container["ready"]:
        message = container["state"]["waiting"].get("message", "")
        assert UNREACHABLE.search(message), f"pulling {OVMS_IMAGE}: {message}"
        # What a user who runs `qatflow status` is told.
        diagnosis = status(namespace, OVMS)
        assert diagnosis.returncode == problems.EXIT_IMAGE_PULL, diagnosis.stderr
        assert f"cannot pull image docker.io/{OVMS_IMAGE}" in diagnosis.stderr
        pytest.skip(
            f"the ovms release was checked up to its image: scheduled on the node with its "
            f"configuration and the claim, but {OVMS_IMAGE} cannot be pulled here (kubelet: "
            f"{message.strip().splitlines()[-1]})"
        )
    version = find_latest(flow.models)
    assert version is not None
    question, context = questions[0]
    with port_forward(namespace, f"service/{OVMS}-ovms", 9000) as port:
        asked = namespace.run(
            str(VENV_BIN / "qatflow"), "ask", "--grpc", f"127.0.0.1:{port}",
            "--protocol", "kserve", "--model", MODEL, "--models-dir", str(flow.models),
            "--question", question, "--context", context, "--json",
        )  # fmt: skip
    answers = [json.loads(line) for line in asked.stdout.splitlines()]
    assert_same_answers(answers, reference_answers(version, "optimum", questions)[:1])


def test_uninstall_stops_the_services_and_keeps_the_model(flow: Flow) -> None:
    namespace = flow.namespace
    for release in namespace.helm("list", "-q").stdout.split():
        namespace.helm("uninstall", release, "--wait", "--timeout", "120s", timeout=180)
    wait_for(
        lambda: not namespace.objects("pods", "app.kubernetes.io/component=inference"),
        120,
        "the services' pods to go",
    )
    assert namespace.helm("list", "-q").stdout.strip() == ""
    # The node runs nothing of the releases any more: the kubelet stopped every container
    # (the sandboxes of deleted pods a moment after their containers).
    node = namespace.cluster.nodes
    assert isinstance(node, RealNode)
    wait_for(lambda: node.running_containers() == [], 60, "the node's containers to stop")
    # Kept, as docs/kubernetes.md says: the claim with the model on it and the finished Job.
    assert [c["metadata"]["name"] for c in namespace.objects("persistentvolumeclaims")] == [CLAIM]
    assert [j["metadata"]["name"] for j in namespace.objects("jobs")] == [f"{TRAINED}-training"]
    assert (flow.models / MODEL / "1" / "manifest.json").exists()


def status(namespace: Namespace, release: str) -> subprocess.CompletedProcess[str]:
    """``qatflow status RELEASE --quiet`` in the namespace, bounded."""
    return namespace.run(
        str(VENV_BIN / "qatflow"), "status", release, "--quiet", "--timeout", "420",
        timeout=480, check=False,
    )  # fmt: skip


@contextlib.contextmanager
def port_forward(namespace: Namespace, target: str, port: int) -> Iterator[int]:
    """``kubectl port-forward TARGET LOCAL:PORT`` for the ``with`` block; yields LOCAL."""
    command = [str(TOOLS / "kubectl"), "port-forward", target, f"{free_port()}:{port}"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=namespace.env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Forwarding from 127.0.0.1:LOCAL -> PORT"
        forwarding = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
        if forwarding is None:
            process.terminate()
            raise AssertionError(f"{' '.join(command)}: {line}{process.communicate()[0]}")
        yield int(forwarding.group(1))
    finally:
        process.terminate()
        process.wait(timeout=30)
