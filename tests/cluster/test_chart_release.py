"""``qatflow status`` on the objects the real chart renders: the labels, names and ports it
relies on must be the chart's. Needs the helm binary from helm/install-tools.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from qatflow.cli import main
from qatflow.cluster import problems

from . import k8s_objects as k8s
from .conftest import NAMESPACE
from .kube_api_fixture import KubernetesApiFixture

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".tools" / "bin" / "helm"
CHART = REPO / "helm" / "qat"
RELEASE = "qatchart"

pytestmark = pytest.mark.skipif(
    not HELM.exists(),
    reason="helm not installed: run helm/install-tools.sh to create .tools/bin/helm",
)


def render(values: str, *flags: str) -> dict[str, list[dict]]:
    result = subprocess.run(
        [
            str(HELM),
            "template",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "-f",
            str(CHART / "ci" / values),
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    objects: dict[str, list[dict]] = {}
    for doc in yaml.safe_load_all(result.stdout):
        if doc:
            objects.setdefault(doc["kind"], []).append(k8s.as_created(doc, NAMESPACE))
    return objects


def pod_of(owner: dict, suffix: str) -> dict:
    template = owner["spec"]["template"]
    pod = k8s._pod(
        {
            "name": f"{owner['metadata']['name']}-{suffix}",
            "namespace": NAMESPACE,
            "uid": suffix,
            "creationTimestamp": k8s.CREATED,
            "labels": dict(template["metadata"]["labels"]),
        },
        dict(template["spec"]),
    )
    k8s.start_pod(pod)
    return pod


@pytest.mark.chart
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("optimum-values.yaml", "qatflow ask --url http://127.0.0.1:8080"),
        ("onnxruntime-values.yaml", "qatflow ask --url http://127.0.0.1:8080"),
        ("ovms-values.yaml", "--protocol kserve --model"),
    ],
)
def test_follows_a_rendered_release(
    values, expected, kube_api: KubernetesApiFixture, kubeconfig, capsys
):
    objects = render(values)
    (job,) = objects["Job"]
    (deployment,) = objects["Deployment"]
    training_pod = pod_of(job, "x7k2p")
    kube_api.add(job, training_pod, *objects.get("PersistentVolumeClaim", []))
    kube_api.logs[training_pod["metadata"]["name"]] = [
        "01:06:10 INFO    qatflow.training.pipeline: summary: fp32 f1 80.12 | ptq f1 77.90 | "
        "qat int8 f1 79.85 | delta -0.27"
    ]

    def hook_succeeded(api: KubernetesApiFixture) -> None:
        k8s.set_container_state(training_pod, "terminated", exitCode=0, reason="Completed")
        k8s.job_finished(job, failed=False)
        k8s.deployment_available(deployment)
        api.add(deployment, pod_of(deployment, "6d9f7c-q4wz8"), *objects["Service"])

    kube_api.after_log(training_pod["metadata"]["name"], hook_succeeded)

    code = main(
        [
            "status",
            RELEASE,
            "--kubeconfig",
            str(kubeconfig),
            "--poll-interval",
            "0.05",
            "--timeout",
            "20",
        ]
    )

    out = capsys.readouterr().out
    assert code == problems.EXIT_READY, out
    assert "==> accuracy summary: fp32 f1 80.12" in out
    assert f"Deployment {deployment['metadata']['name']} is available" in out
    assert f"svc/{objects['Service'][0]['metadata']['name']}" in out
    assert expected in out


@pytest.mark.chart
def test_no_hooks_release_is_followed_without_a_job(
    kube_api: KubernetesApiFixture, kubeconfig, capsys
):
    objects = render("inference-only-values.yaml", "--no-hooks")
    assert "Job" not in objects
    (deployment,) = objects["Deployment"]
    k8s.deployment_available(deployment)
    kube_api.add(deployment, pod_of(deployment, "6d9f7c-q4wz8"), *objects["Service"])

    code = main(["status", RELEASE, "--kubeconfig", str(kubeconfig), "--timeout", "20"])
    assert code == problems.EXIT_READY
    assert "no training Job" in capsys.readouterr().out
