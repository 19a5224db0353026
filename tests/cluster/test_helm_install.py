"""``helm install`` of the chart on a real API server with its real controllers and scheduler.

Simulated: only the nodes' containers (simulated_node.py): a training pod "runs" for a moment
and exits with the code its script says, the inference pods report Running and Ready.
Everything else — hooks and their order, admission, the Job controller's podFailurePolicy and
Indexed completion, scheduling on labels, taints and GPUs, volume binding, garbage collection —
is Kubernetes v1.36 itself, driven by the real helm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qatflow.core import outcome

from ..chart.conftest import chart_values
from .conftest import CHART, Namespace, wait_for
from .simulated_node import DEFAULT_STORAGE_CLASS, Script

pytestmark = pytest.mark.cluster

RELEASE = "qatchart"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# Where the CI values' node selectors, tolerations and GPU limits must land a component.
PLACEMENT = {
    "gpu-values": {"training": "gpu-node"},
    "onnxruntime-values": {"training": "training-node"},
    "ovms-values": {"inference": "inference-node"},
}
TERMINATION_LOG = "/dev/termination-log"


def install(namespace: Namespace, *args: str, timeout: str = "90s") -> Any:
    return namespace.helm("install", RELEASE, str(CHART), "--timeout", timeout, *args, check=False)


def release_status(namespace: Namespace) -> str:
    info = json.loads(namespace.helm("status", RELEASE, "-o", "json").stdout)["info"]
    return str(info["status"])


def by_component(namespace: Namespace, kind: str, component: str) -> list[dict[str, Any]]:
    return namespace.objects(
        kind, f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    )


def available(namespace: Namespace, deployment: str) -> None:
    result = namespace.kubectl("rollout", "status", f"deployment/{deployment}", "--timeout=60s")
    assert "successfully rolled out" in result.stdout


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[path.stem for path in CI_VALUES])
def test_ci_values_install_and_deploy(namespace: Namespace, values_file: Path) -> None:
    values = chart_values(values_file)
    persistence, training = values["persistence"], values["training"]
    flags = ["-f", str(values_file)]
    if not training["enabled"]:
        flags.append("--no-hooks")  # as docs/kubernetes.md installs inference only
    if persistence["existingClaim"]:
        namespace.create_claim(persistence["existingClaim"])

    result = install(namespace, *flags)

    assert result.returncode == 0, result.stderr
    assert "STATUS: deployed" in result.stdout
    assert release_status(namespace) == "deployed"
    jobs = by_component(namespace, "jobs", "training")
    if training["enabled"]:
        # Hook order held: claim and account first, then the Job, which completed.
        (job,) = jobs
        conditions = {c["type"]: c["status"] for c in job["status"]["conditions"]}
        assert conditions.get("Complete") == "True"
        pods = namespace.objects("pods", f"batch.kubernetes.io/job-name={job['metadata']['name']}")
        assert len(pods) == training["nodes"]
        assert {pod["status"]["phase"] for pod in pods} == {"Succeeded"}
    else:
        assert jobs == []
    backend = values["inference"]["backend"]
    deployment = f"{RELEASE}-{backend}"
    available(namespace, deployment)
    (service,) = by_component(namespace, "services", "inference")
    assert service["metadata"]["name"] == deployment
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    if backend == "ovms":
        assert ports == {"grpc": 9000, "rest": 8000}
    else:
        assert ports == {"http": values["inference"]["port"]}
    if persistence["hostPath"]["path"]:
        assert namespace.objects("persistentvolumeclaims") == []
    else:
        claim_name = persistence["existingClaim"] or f"{RELEASE}-models"
        (claim,) = [
            c
            for c in namespace.objects("persistentvolumeclaims")
            if c["metadata"]["name"] == claim_name
        ]
        assert claim["status"]["phase"] == "Bound"
        if not persistence["existingClaim"]:
            assert claim["spec"]["accessModes"] == persistence["accessModes"]
            assert claim["spec"]["storageClassName"] == (
                persistence["storageClass"] or DEFAULT_STORAGE_CLASS
            )
    for component, node in PLACEMENT.get(values_file.stem, {}).items():
        pods = by_component(namespace, "pods", component)
        assert pods and {pod["spec"]["nodeName"] for pod in pods} == {node}
    if values["inference"]["autoscaling"]["enabled"]:
        (autoscaler,) = namespace.objects("horizontalpodautoscalers")
        scaling = values["inference"]["autoscaling"]
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment
        assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (
            scaling["minReplicas"],
            scaling["maxReplicas"],
        )


FAILURES = {
    outcome.EXIT_FAILED: "training failed, nothing published: no such data set",
    outcome.EXIT_BAD_CONFIG: "configuration error: unknown setting 'epoch'",
    outcome.EXIT_GATE_FAILED: "accuracy gate failed, nothing published: INT8 f1 70.00 is below "
    "FP32 f1 80.12 minus tolerance 2.00",
}


@pytest.mark.parametrize("code", outcome.FAILURE_EXIT_CODES)
def test_failed_training_fails_the_install_at_once(namespace: Namespace, code: int) -> None:
    """podFailurePolicy: the training command's own failures are not retried."""
    namespace.script(
        "training",
        Script(
            exit_code=code,
            message=outcome.TrainingOutcome(code, FAILURES[code]).to_json(),
            log=(f"ERROR   qatflow.training: {FAILURES[code]}",),
        ),
    )

    result = install(namespace)

    assert result.returncode != 0
    # What helm says: which hook failed
    assert (
        f"failed pre-install: resource Job/{namespace.name}/{RELEASE}-training not ready. "
        "status: Failed, message: Job Failed" in result.stderr
    )
    # and, printed by helm (hook-output-log-policy), the training log that says why.
    assert FAILURES[code] in result.stdout + result.stderr
    assert release_status(namespace) == "failed"
    (job,) = by_component(namespace, "jobs", "training")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert f"failed with exit code {code} matching FailJob rule" in failed["message"]
    assert len(namespace.objects("pods")) == 1, "retried although retrying cannot help"
    # No service on a model that failed: Helm created none of the release's objects.
    assert namespace.objects("deployments") == []
    # The reason stays readable after the install (test_status: `qatflow status` too).
    assert FAILURES[code] in namespace.kubectl("logs", f"job/{RELEASE}-training").stdout


def test_killed_training_is_retried_then_fails_the_install(namespace: Namespace) -> None:
    """Exit 137 (OOM kill): not the model's fault, so retried training.backoffLimit times."""
    namespace.script("training", Script(exit_code=137, reason="OOMKilled"))

    result = install(namespace)

    assert result.returncode != 0
    assert "failed pre-install" in result.stderr
    (job,) = by_component(namespace, "jobs", "training")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    backoff_limit = chart_values(None)["training"]["backoffLimit"]
    assert len(namespace.objects("pods")) == backoff_limit + 1
    assert namespace.objects("deployments") == []


def test_multinode_values_run_an_indexed_job(namespace: Namespace) -> None:
    values = chart_values(CHART / "ci" / "multinode-values.yaml")
    nodes = values["training"]["nodes"]

    result = install(namespace, "-f", str(CHART / "ci" / "multinode-values.yaml"))

    assert result.returncode == 0, result.stderr
    job = namespace.objects("jobs")[0]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["status"]["completedIndexes"] == f"0-{nodes - 1}"
    pods = namespace.objects("pods", f"batch.kubernetes.io/job-name={RELEASE}-training")
    index = "batch.kubernetes.io/job-completion-index"
    assert sorted(int(p["metadata"]["annotations"][index]) for p in pods) == list(range(nodes))
    # Each pod has the host name the rendezvous address is built from, one pod per node.
    assert {p["spec"]["hostname"] for p in pods} == {
        f"{RELEASE}-training-{i}" for i in range(nodes)
    }
    assert {p["spec"]["subdomain"] for p in pods} == {f"{RELEASE}-training"}
    assert len({p["spec"]["nodeName"] for p in pods}) == nodes
    # The headless rendezvous Service was a hook, deleted once training succeeded.
    assert [s["metadata"]["name"] for s in namespace.objects("services")] == [f"{RELEASE}-optimum"]
    assert {p["metadata"]["name"] for p in namespace.objects("networkpolicies")} == {
        RELEASE,
        f"{RELEASE}-training",
    }


def test_one_failed_rank_fails_the_multinode_install(namespace: Namespace) -> None:
    index = "batch.kubernetes.io/job-completion-index"
    namespace.script(
        "training",
        lambda pod: Script(exit_code=1 if pod["metadata"]["annotations"][index] == "2" else 0),
    )

    result = install(namespace, "-f", str(CHART / "ci" / "multinode-values.yaml"))

    assert result.returncode != 0
    assert "failed pre-install" in result.stderr
    assert namespace.objects("deployments") == []


def test_upgrade_test_and_uninstall(namespace: Namespace) -> None:
    namespace.script("test", Script(log=("answer: 'Velmora' (score 0.91)", "ok: Velmora")))
    assert install(namespace).returncode == 0
    (job,) = namespace.objects("jobs")

    # An upgrade changes the service and does not retrain (the hook is pre-install only).
    upgraded = namespace.helm(
        "upgrade", RELEASE, str(CHART), "--reuse-values", "--set", "inference.replicaCount=2"
    )
    assert "STATUS: deployed" in upgraded.stdout and "REVISION: 2" in upgraded.stdout
    available(namespace, f"{RELEASE}-optimum")
    (deployment,) = namespace.objects("deployments")
    assert deployment["status"]["readyReplicas"] == 2
    assert [j["metadata"]["uid"] for j in namespace.objects("jobs")] == [job["metadata"]["uid"]]

    # With retrainOnUpgrade the Job is a pre-upgrade hook too: it runs again.
    namespace.helm(
        "upgrade", RELEASE, str(CHART), "--reuse-values", "--set", "training.retrainOnUpgrade=true"
    )
    (retrained,) = namespace.objects("jobs")
    assert retrained["metadata"]["uid"] != job["metadata"]["uid"]

    # `helm test` runs the test pod and shows its log; a wrong answer fails it.
    tested = namespace.helm("test", RELEASE, "--logs")
    assert "Phase:          Succeeded" in tested.stdout
    assert "ok: Velmora" in tested.stdout
    namespace.script("test", Script(exit_code=1, log=("wrong answer: 'Tarnow'",)))
    failed = namespace.helm("test", RELEASE, "--logs", check=False)
    assert failed.returncode != 0
    assert f"pod {RELEASE}-test-answer failed" in failed.stderr

    # Uninstall removes the release's objects and keeps what the docs say it keeps.
    namespace.helm("uninstall", RELEASE, "--wait", "--timeout", "60s")
    wait_for(
        lambda: not by_component(namespace, "pods", "inference"), 30, "the service's pods to go"
    )
    left = {
        (kind, o["metadata"]["name"])
        for kind in ("persistentvolumeclaims", "serviceaccounts", "jobs", "pods", "services")
        for o in namespace.objects(kind)
        if o["metadata"]["name"] != "default"
    }
    kept = {
        ("persistentvolumeclaims", f"{RELEASE}-models"),  # helm.sh/resource-policy: keep
        ("serviceaccounts", f"{RELEASE}-training"),  # the same, for the next install's hook
        ("jobs", f"{RELEASE}-training"),  # hooks are not release objects: left to their TTL
        ("pods", f"{RELEASE}-test-answer"),  # the test hook, kept for `kubectl logs`
    }
    training_pods = {
        ("pods", p["metadata"]["name"]) for p in by_component(namespace, "pods", "training")
    }
    assert left == kept | training_pods
    assert namespace.helm("list", "-q").stdout.strip() == ""
    (claim,) = namespace.objects("persistentvolumeclaims")
    # Installed again, the release trains into the claim it kept: the same one, models and all.
    reinstall = install(namespace)
    assert reinstall.returncode == 0, reinstall.stderr
    (again,) = namespace.objects("persistentvolumeclaims")
    assert again["metadata"]["uid"] == claim["metadata"]["uid"]
    assert again["status"]["phase"] == "Bound"


def test_inference_only_without_a_claim_is_refused(namespace: Namespace) -> None:
    """No existing claim to serve from: a clear refusal, never a pod waiting for a claim the
    skipped hook would have made (and that would hold no model)."""
    result = namespace.helm(
        "install",
        "qatserve",
        str(CHART),
        "--no-hooks",
        "--set",
        "training.enabled=false",
        check=False,
    )

    assert result.returncode != 0
    assert "training.enabled=false serves a model that is already on a volume" in result.stderr
    assert "--set persistence.existingClaim=CLAIM" in result.stderr
    assert namespace.helm("list", "-q").stdout.strip() == ""
    assert namespace.objects("deployments") == []
