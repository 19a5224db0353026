"""``qatflow status`` against a real API server, during and after a real ``helm install``.

Simulated: only the nodes' containers (simulated_node.py). The training pod's log lines and
its termination message are what the training command prints and writes (the message is made
by the same ``TrainingOutcome`` the training CLI writes); everything ``qatflow status`` reads —
Jobs, pods, their logs through the API server, Deployments, Services, claims and events —
comes from Kubernetes itself.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from qatflow.cli import main
from qatflow.cluster import problems
from qatflow.core.outcome import EXIT_GATE_FAILED, TrainingOutcome
from qatflow.local import free_port

from .conftest import CHART, TOOLS, Namespace
from .simulated_node import Script
from .training_run import SUMMARY, TRAINING_LOG, TRAINS

pytestmark = pytest.mark.cluster

RELEASE = "qatchart"


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """Commands left running (a helm install waiting on its hook) are stopped at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def helm_install(
    namespace: Namespace,
    background: list[subprocess.Popen[str]],
    *args: str,
    release: str = RELEASE,
) -> subprocess.Popen[str]:
    """``helm install`` as a user starts it, left running while the test follows it."""
    process = subprocess.Popen(
        [str(TOOLS / "helm"), "install", release, str(CHART), "--timeout", "60s", *args],
        env=namespace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    background.append(process)
    return process


def follow(namespace: Namespace, *extra: str, release: str = RELEASE) -> int:
    """``qatflow status``, bounded so that a regression fails in seconds instead of hanging."""
    bounds = ["--poll-interval", "0.2", "--timeout", "60"]
    return main(["status", release, "--kubeconfig", str(namespace.kubeconfig), *bounds, *extra])


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=90)
    return process.returncode, out + err


def test_follows_training_then_prints_how_to_query(namespace, background, capsys):
    namespace.script("training", TRAINS)
    install = helm_install(namespace, background)

    assert follow(namespace) == problems.EXIT_READY

    out = capsys.readouterr().out
    # The training log is streamed as kubectl logs -f would, then summed up from what the
    # container reported as it exited.
    assert (
        out.index("[1/9] Load model")
        < out.index("qat step 40/75")
        < out.index("training Job qatchart-training complete")
        < out.index(f"==> accuracy summary: {SUMMARY}")
        < out.index("==> published bert-qa version 1 to /models/bert-qa/1\n")
    )
    assert "Deployment qatchart-optimum is available (optimum)" in out
    assert f"kubectl port-forward -n {namespace.name} svc/qatchart-optimum 8080:8080" in out
    # The published model answers questions (its outcome says so): only that example is shown.
    assert 'qatflow ask --url http://127.0.0.1:8080 --question "What does QAT' in out
    assert "--text" not in out
    code, said = finished(install)
    assert code == 0, said


def test_after_the_install_quiet_prints_only_the_outcome(namespace, background, capsys):
    namespace.script("training", TRAINS)
    code, said = finished(
        helm_install(namespace, background, "--set", "inference.backend=onnxruntime")
    )
    assert code == 0, said

    assert follow(namespace, "--quiet") == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "qat step 40/75" not in out
    assert f"==> accuracy summary: {SUMMARY}" in out
    assert "(onnxruntime)" in out


def test_accuracy_gate_failure_exits_with_the_reason(namespace, background, capsys):
    message = (
        "accuracy gate failed, nothing published: INT8 f1 70.00 is below FP32 f1 80.12 minus "
        "tolerance 1.00"
    )
    outcome = TrainingOutcome(EXIT_GATE_FAILED, message, metric="f1", summary=SUMMARY)
    namespace.script(
        "training",
        Script(exit_code=EXIT_GATE_FAILED, log=TRAINING_LOG[:2], message=outcome.to_json()),
    )
    install = helm_install(namespace, background)

    assert follow(namespace) == problems.EXIT_TRAINING_FAILED

    err = capsys.readouterr().err
    assert f"training Job qatchart-training failed (PodFailurePolicy): {message}" in err
    assert f"accuracy summary: {SUMMARY}" in err
    assert f"kubectl logs -n {namespace.name} job/qatchart-training" in err
    assert finished(install)[0] != 0


def test_killed_training_shows_the_end_of_its_log(namespace, background, capsys):
    """Killed before it could write its outcome: Kubernetes keeps the log's end instead
    (terminationMessagePolicy FallbackToLogsOnError), and status shows that."""
    tail = "\n".join(TRAINING_LOG[:2])
    namespace.script(
        "training", Script(exit_code=137, reason="OOMKilled", log=TRAINING_LOG[:2], message=tail)
    )
    helm_install(namespace, background, "--set", "training.backoffLimit=0")

    assert follow(namespace) == problems.EXIT_TRAINING_FAILED

    err = capsys.readouterr().err
    assert (
        "failed (BackoffLimitExceeded): killed (out of memory or past activeDeadlineSeconds)"
        in (err)
    )
    assert "last log lines:\n    01:00:05 INFO" in err
    assert "qat step 40/75 loss 1.2034" in err


def test_training_image_pull_error(namespace, background, capsys):
    image = "registry.example.com/qatflow-training:0.1.0"
    namespace.script(
        "training",
        Script(waiting="ImagePullBackOff", waiting_message=f'Back-off pulling image "{image}"'),
    )
    helm_install(namespace, background, "--set", "image.registry=registry.example.com")

    assert follow(namespace) == problems.EXIT_IMAGE_PULL

    err = capsys.readouterr().err
    assert f"cannot pull image {image} (ImagePullBackOff)" in err
    assert "imagePullSecrets" in err


def test_service_image_pull_error(namespace, background, capsys):
    namespace.script(
        "inference",
        Script(waiting="ErrImagePull", waiting_message="failed to resolve reference: not found"),
    )
    helm_install(namespace, background)

    assert follow(namespace) == problems.EXIT_IMAGE_PULL
    assert "(ErrImagePull): failed to resolve reference: not found" in capsys.readouterr().err


def test_pending_volume_claim(namespace, background, capsys):
    helm_install(namespace, background, "--set", "persistence.storageClass=absent")

    assert follow(namespace, "--volume-grace", "1") == problems.EXIT_PENDING_VOLUME

    err = capsys.readouterr().err
    assert "PersistentVolumeClaim qatchart-models, still Pending (storageClass absent)" in err
    # The real PersistentVolume controller's event says why.
    assert 'ProvisioningFailed: storageclass.storage.k8s.io "absent" not found' in err


def test_claim_bound_late_is_not_an_error(namespace, background, capsys):
    """A claim the provisioner binds after a while is Pending meanwhile: only one stuck past
    the grace fails."""
    namespace.script("training", TRAINS)
    helm_install(namespace, background, "--set", "persistence.storageClass=slow")

    assert follow(namespace, "--volume-grace", "30", "--quiet") == problems.EXIT_READY


def test_no_hooks_without_a_claim_says_what_to_pass(namespace, background, capsys):
    """`--no-hooks` alone skips the hook that creates the claim: the pod waits for a claim
    that will never exist, and status says so and what to pass instead."""
    code, said = finished(helm_install(namespace, background, "--no-hooks"))
    assert code == 0, said  # helm cannot know; the chart cannot see --no-hooks
    assert "With --no-hooks it is not created" in said  # NOTES warn

    assert follow(namespace, "--volume-grace", "1") == problems.EXIT_PENDING_VOLUME

    err = capsys.readouterr().err
    assert "PersistentVolumeClaim qatchart-models, which does not exist" in err
    assert "--set training.enabled=false --set persistence.existingClaim=" in err


def test_timeout_while_the_service_never_becomes_available(namespace, background, capsys):
    namespace.script(
        "inference", Script(waiting="CrashLoopBackOff", waiting_message="back-off 40s")
    )
    helm_install(namespace, background)

    assert follow(namespace, "--timeout", "5") == problems.EXIT_TIMEOUT

    err = capsys.readouterr().err
    assert "timed out after 5.0s waiting for Deployment qatchart-optimum to become available" in (
        err
    )
    assert "(pods waiting: optimum: CrashLoopBackOff)" in err


def test_inference_only_release_with_ovms(namespace, background, capsys):
    """--no-hooks on a kept claim: no Job; the OVMS Deployment is followed and the gRPC
    command printed."""
    namespace.create_claim("kept-models")
    flags = ("--no-hooks", "--set", "training.enabled=false")
    flags += ("--set", "persistence.existingClaim=kept-models", "--set", "inference.backend=ovms")
    code, said = finished(helm_install(namespace, background, *flags))
    assert code == 0, said

    assert follow(namespace) == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "no training Job" in out
    assert f"kubectl port-forward -n {namespace.name} svc/qatchart-ovms 9000:9000" in out
    assert "qatflow ask --grpc 127.0.0.1:9000 --protocol kserve --model bert-qa" in out
    # Nothing trained in this release says the model's task: both examples are shown.
    assert "--question" in out and "--text" in out


def test_multi_node_training_follows_rank_zero_only(namespace, background, capsys):
    index = "batch.kubernetes.io/job-completion-index"

    def by_rank(pod: dict) -> Script:
        if pod["metadata"]["annotations"][index] == "0":
            return TRAINS
        return Script(seconds=2.0, log=("[rank 1/6] rank 1 finished training",))

    namespace.script("training", by_rank)
    helm_install(namespace, background, "-f", str(CHART / "ci" / "multinode-values.yaml"))

    assert follow(namespace) == problems.EXIT_READY

    out = capsys.readouterr().out
    assert "==> published bert-qa version 1" in out
    assert "rank 1 finished training" not in out
    assert "retried" not in out


def test_release_that_does_not_exist_times_out_with_a_hint(namespace, capsys):
    assert follow(namespace, "--timeout", "1", "-n", "elsewhere") == problems.EXIT_TIMEOUT
    assert (
        "app.kubernetes.io/instance=qatchart in namespace elsewhere "
        "(is the release installed there?)" in capsys.readouterr().err
    )


def test_context_chooses_the_namespace(namespace, capsys):
    config = yaml.safe_load(namespace.kubeconfig.read_text())
    staging = {**config["contexts"][0]["context"], "namespace": "staging"}
    config["contexts"].append({"name": "staging", "context": staging})
    namespace.kubeconfig.write_text(yaml.safe_dump(config))

    assert follow(namespace, "--context", "staging", "--timeout", "1") == problems.EXIT_TIMEOUT
    assert "in namespace staging (is the release installed there?)" in capsys.readouterr().err
    assert follow(namespace, "--context", "absent") == problems.EXIT_USAGE


def unreachable_kubeconfig(path: Path) -> Path:
    """A kubeconfig naming a loopback port where nothing listens."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_missing_kubeconfig_is_a_usage_error(tmp_path, capsys):
    arguments = ["status", RELEASE, "--kubeconfig", str(tmp_path / "absent.yaml")]
    assert main(arguments) == problems.EXIT_USAGE
    assert "cannot load the Kubernetes configuration" in capsys.readouterr().err


def test_unreachable_cluster(tmp_path, capsys):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    assert main(["status", RELEASE, "--kubeconfig", str(kubeconfig), "--timeout", "5"]) == (
        problems.EXIT_CLUSTER_ERROR
    )
    assert "cannot reach the Kubernetes API" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--timeout", "0"], ["--poll-interval", "-1"]])
def test_bad_arguments(tmp_path, bad, capsys):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    assert main(["status", RELEASE, "--kubeconfig", str(kubeconfig), *bad]) == problems.EXIT_USAGE
