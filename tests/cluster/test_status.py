"""``qatflow status`` against the Kubernetes API fixture: the outcomes a user can meet."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from qatflow.cli import main
from qatflow.cluster import problems

from . import k8s_objects as k8s
from .conftest import NAMESPACE
from .kube_api_fixture import KubernetesApiFixture

RELEASE = "qatchart"
CLAIM = f"{RELEASE}-qat-models"
TRAINING_LOG = [
    "01:00:05 INFO    qatflow.training.pipeline: [1/8] Load model",
    "01:00:41 INFO    qatflow.training.loop: qat step 40/75 loss 1.2034 11.8 samples/s ETA 0m48s",
    "01:06:10 INFO    qatflow.training.pipeline: accuracy             EM       F1",
    "01:06:10 INFO    qatflow.training.pipeline: FP32              71.50    80.12",
    "01:06:10 INFO    qatflow.training.pipeline: summary: fp32 f1 80.12 | ptq f1 77.90 | "
    "qat int8 f1 79.85 | delta -0.27",
    "01:06:12 INFO    qatflow.training.pipeline: published bert-qa version 1 to "
    "/models/bert-qa/1 in 6m07s",
]


def follow(kubeconfig: Path, *extra: str) -> int:
    """``qatflow status``, bounded so that a regression fails in seconds instead of hanging."""
    bounds = ["--poll-interval", "0.05", "--timeout", "20"]
    return main(["status", RELEASE, "--kubeconfig", str(kubeconfig), *bounds, *extra])


def install(api: KubernetesApiFixture, backend: str = "optimum") -> tuple[dict, dict, dict]:
    """A release right after ``helm install``: the hook Job's pod running, no Deployment yet."""
    job = k8s.training_job(RELEASE, NAMESPACE, CLAIM)
    pod = k8s.job_pod(job)
    k8s.set_container_state(pod, "running")
    deployment = k8s.inference_deployment(RELEASE, NAMESPACE, backend, CLAIM)
    api.add(
        job,
        pod,
        k8s.volume_claim(RELEASE, NAMESPACE, CLAIM, phase="Bound", storage_class="local-path"),
    )
    # Another release's failed training in the same namespace must not be mistaken for ours.
    other = k8s.training_job("other", NAMESPACE, "other-qat-models")
    k8s.job_finished(other, failed=True)
    api.add(other)
    return job, pod, deployment


def finish_training(
    api: KubernetesApiFixture, job: dict, pod: dict, deployment: dict, *, exit_code: int = 0
) -> None:
    def container_exited(api: KubernetesApiFixture) -> None:
        k8s.set_container_state(
            pod, "terminated", exitCode=exit_code, reason="Completed" if exit_code == 0 else "Error"
        )
        k8s.job_finished(job, failed=exit_code != 0)
        if exit_code == 0:  # Helm goes on with the release's objects once the hook succeeded
            serving_pod = k8s.deployment_pod(deployment)
            k8s.set_container_state(serving_pod, "running")
            api.add(deployment, k8s.inference_service(deployment), serving_pod)

    api.after_log(pod["metadata"]["name"], container_exited)


def test_follows_training_then_prints_how_to_query(kube_api, kubeconfig, capsys):
    job, pod, deployment = install(kube_api)
    kube_api.logs[pod["metadata"]["name"]] = TRAINING_LOG
    finish_training(kube_api, job, pod, deployment)
    kube_api.after_reads("Deployment", 4, lambda api: k8s.deployment_available(deployment))

    assert follow(kubeconfig) == problems.EXIT_READY

    out = capsys.readouterr().out
    # The training log is streamed as kubectl logs -f would, then summed up.
    assert (
        out.index("[1/8] Load model")
        < out.index("qat step 40/75")
        < out.index("training Job qatchart-qat-training complete")
    )
    assert (
        "==> accuracy summary: fp32 f1 80.12 | ptq f1 77.90 | qat int8 f1 79.85 | delta -0.27"
        in out
    )
    assert "==> published bert-qa version 1 to /models/bert-qa/1" in out
    assert "Deployment qatchart-qat-optimum is available (optimum)" in out
    assert "kubectl port-forward -n qa-demo svc/qatchart-qat-optimum 8080:8080" in out
    assert "qatflow ask --url http://127.0.0.1:8080" in out
    # It found its objects by the chart's labels, and streamed with follow=true.
    queries = [(urlsplit(path).path, parse_qs(urlsplit(path).query)) for path in kube_api.requests]
    assert (
        f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs",
        {
            "labelSelector": [
                "app.kubernetes.io/instance=qatchart,app.kubernetes.io/component=training"
            ]
        },
    ) in queries
    assert any(
        path.endswith("/log")
        and query.get("follow") == ["true"]
        and query.get("container") == ["training"]
        for path, query in queries
    )


def test_quiet_prints_only_the_outcome(kube_api, kubeconfig, capsys):
    job, pod, deployment = install(kube_api, backend="onnxruntime")
    kube_api.logs[pod["metadata"]["name"]] = TRAINING_LOG
    finish_training(kube_api, job, pod, deployment)
    k8s.deployment_available(deployment)

    assert follow(kubeconfig, "--quiet") == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "qat step 40/75" not in out
    assert "==> accuracy summary: fp32 f1 80.12" in out
    assert "(onnxruntime)" in out


def test_accuracy_gate_failure_exits_with_the_reason(kube_api, kubeconfig, capsys):
    job, pod, deployment = install(kube_api)
    kube_api.logs[pod["metadata"]["name"]] = [
        *TRAINING_LOG[:2],
        "01:06:10 ERROR   qatflow.training: accuracy gate failed, nothing published: "
        "INT8 f1 70.00 is below FP32 f1 80.12 minus tolerance 1.00",
    ]
    finish_training(kube_api, job, pod, deployment, exit_code=3)

    assert follow(kubeconfig) == problems.EXIT_TRAINING_FAILED

    err = capsys.readouterr().err
    assert "training Job qatchart-qat-training failed (BackoffLimitExceeded)" in err
    assert "accuracy gate failed: the INT8 model lost too much accuracy" in err
    assert "INT8 f1 70.00 is below FP32 f1 80.12" in err
    assert "kubectl logs -n qa-demo job/qatchart-qat-training" in err
    # A failed hook means Helm deploys no service: status does not wait for one.
    assert not any("/deployments" in path for path in kube_api.requests[-3:])


def test_training_image_pull_error(kube_api, kubeconfig, capsys):
    _, pod, _ = install(kube_api)
    k8s.set_container_state(
        pod,
        "waiting",
        reason="ImagePullBackOff",
        message=f'Back-off pulling image "{k8s.TRAINING_IMAGE}"',
    )

    assert follow(kubeconfig) == problems.EXIT_IMAGE_PULL

    err = capsys.readouterr().err
    assert f"cannot pull image {k8s.TRAINING_IMAGE} (ImagePullBackOff)" in err
    assert "imagePullSecrets" in err


def test_service_image_pull_error(kube_api, kubeconfig, capsys):
    deployment = k8s.inference_deployment(RELEASE, NAMESPACE, "optimum", CLAIM)
    pod = k8s.deployment_pod(deployment)
    k8s.set_container_state(
        pod, "waiting", reason="ErrImagePull", message="failed to resolve reference: not found"
    )
    kube_api.add(deployment, pod)

    assert follow(kubeconfig) == problems.EXIT_IMAGE_PULL
    assert "(ErrImagePull): failed to resolve reference: not found" in capsys.readouterr().err


def test_pending_volume_claim(kube_api, kubeconfig, capsys):
    job = k8s.training_job(RELEASE, NAMESPACE, CLAIM)
    pod = k8s.job_pod(job)
    k8s.set_unschedulable(
        pod,
        "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    )
    claim = k8s.volume_claim(RELEASE, NAMESPACE, CLAIM, phase="Pending", storage_class=None)
    kube_api.add(
        job,
        pod,
        claim,
        k8s.claim_event(
            claim,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
        ),
    )

    assert follow(kubeconfig, "--volume-grace", "0.2") == problems.EXIT_PENDING_VOLUME

    err = capsys.readouterr().err
    assert f"PersistentVolumeClaim {CLAIM}, still Pending (storageClass cluster default)" in err
    assert "FailedBinding: no persistent volumes available for this claim" in err


def test_claim_bound_late_is_not_an_error(kube_api, kubeconfig, capsys):
    """WaitForFirstConsumer claims stay Pending a while: only one stuck past the grace fails."""
    job, pod, deployment = install(kube_api)
    kube_api.objects["PersistentVolumeClaim"][0]["status"]["phase"] = "Pending"
    k8s.set_unschedulable(
        pod, "0/1 nodes are available: waiting for first consumer to be created before binding"
    )

    def bound(api: KubernetesApiFixture) -> None:
        api.objects["PersistentVolumeClaim"][0]["status"]["phase"] = "Bound"
        k8s.set_container_state(pod, "running")

    kube_api.after_reads("PersistentVolumeClaim", 3, bound)
    kube_api.logs[pod["metadata"]["name"]] = TRAINING_LOG
    finish_training(kube_api, job, pod, deployment)
    k8s.deployment_available(deployment)

    assert follow(kubeconfig, "--volume-grace", "30") == problems.EXIT_READY


def test_timeout_while_the_service_never_becomes_available(kube_api, kubeconfig, capsys):
    deployment = k8s.inference_deployment(RELEASE, NAMESPACE, "optimum", CLAIM)
    pod = k8s.deployment_pod(deployment)
    k8s.set_container_state(
        pod, "waiting", reason="CrashLoopBackOff", message="back-off 40s restarting"
    )
    kube_api.add(deployment, pod, k8s.inference_service(deployment))

    assert follow(kubeconfig, "--timeout", "0.5") == problems.EXIT_TIMEOUT

    err = capsys.readouterr().err
    assert (
        "timed out after 0.5s waiting for Deployment qatchart-qat-optimum to become available"
        in err
    )
    assert "inference: CrashLoopBackOff" in err


def test_inference_only_release_with_ovms(kube_api, kubeconfig, capsys):
    """--no-hooks: no training Job; the OVMS Deployment is followed and the gRPC command printed."""
    deployment = k8s.inference_deployment(RELEASE, NAMESPACE, "ovms", CLAIM)
    k8s.deployment_available(deployment)
    pod = k8s.deployment_pod(deployment)
    k8s.set_container_state(pod, "running")
    kube_api.add(deployment, pod, k8s.inference_service(deployment))

    assert follow(kubeconfig) == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "no training Job" in out
    assert "kubectl port-forward -n qa-demo svc/qatchart-qat-ovms 9000:9000" in out
    assert "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa" in out


def test_release_that_does_not_exist_times_out_with_a_hint(kube_api, kubeconfig, capsys):
    assert follow(kubeconfig, "--timeout", "0.3", "-n", "elsewhere") == problems.EXIT_TIMEOUT
    assert (
        "app.kubernetes.io/instance=qatchart in namespace elsewhere "
        "(is the release installed there?)" in capsys.readouterr().err
    )


def test_context_chooses_the_namespace(kube_api, kubeconfig, capsys):
    config = yaml.safe_load(kubeconfig.read_text())
    staging = {
        "name": "staging",
        "context": {"cluster": "fixture", "user": "tester", "namespace": "staging"},
    }
    config["contexts"].append(staging)
    kubeconfig.write_text(yaml.safe_dump(config))

    assert follow(kubeconfig, "--context", "staging", "--timeout", "0.3") == problems.EXIT_TIMEOUT
    assert "in namespace staging (is the release installed there?)" in capsys.readouterr().err
    assert follow(kubeconfig, "--context", "absent") == problems.EXIT_USAGE


def test_missing_kubeconfig_is_a_usage_error(tmp_path, capsys):
    assert follow(tmp_path / "absent.yaml") == problems.EXIT_USAGE
    assert "cannot load the Kubernetes configuration" in capsys.readouterr().err


def test_unreachable_cluster(kube_api, kubeconfig, capsys):
    kube_api.stop()
    assert follow(kubeconfig, "--timeout", "5") == problems.EXIT_CLUSTER_ERROR
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--timeout", "0"], ["--poll-interval", "-1"]])
def test_bad_arguments(kubeconfig, bad, capsys):
    assert main(["status", RELEASE, "--kubeconfig", str(kubeconfig), *bad]) == problems.EXIT_USAGE


def test_multi_node_training_follows_rank_zero_only(kube_api, kubeconfig, capsys):
    job, pod, deployment = install(kube_api)
    job["spec"].update(completionMode="Indexed", completions=2, parallelism=2)
    index = "batch.kubernetes.io/job-completion-index"
    pod["metadata"]["annotations"] = {index: "0"}
    worker = k8s.job_pod(job, suffix="1-w9q4z")
    worker["metadata"]["annotations"] = {index: "1"}
    k8s.set_container_state(worker, "running")
    kube_api.add(worker)
    kube_api.logs[pod["metadata"]["name"]] = TRAINING_LOG
    kube_api.logs[worker["metadata"]["name"]] = ["[rank 1/2] rank 1 finished training"]
    finish_training(kube_api, job, pod, deployment)
    kube_api.after_reads("Deployment", 4, lambda api: k8s.deployment_available(deployment))

    assert follow(kubeconfig) == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "published bert-qa version 1" in out
    assert "rank 1 finished training" not in out
    assert "retried" not in out
