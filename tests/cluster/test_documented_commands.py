"""Every ``helm``, ``kubectl`` and ``qatflow status`` command in README.md,
docs/kubernetes.md and the chart's README, run as written (by bash, with kubectl's context
namespace as the only change) against the real control plane, or listed in ``NOT_HERE`` with
the reason.

Simulated: only the nodes' containers (simulated_node.py). Training pods log and report the
lines of training_run.py, ``helm test`` pods succeed, inference pods report Ready.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.documented import CLUSTER_COMMAND, CLUSTER_DOCUMENTS, Documented, as_written
from tests.documented import documented_commands as commands_in

from .conftest import Namespace
from .training_run import TRAINING_LOG, TRAINS

pytestmark = pytest.mark.cluster


def documented_commands() -> list[Documented]:
    return commands_in(CLUSTER_DOCUMENTS, CLUSTER_COMMAND)


@dataclass(frozen=True)
class Step:
    command: str
    # Shell run right after the command in the same bash (to show what it set), and a text
    # its output must hold.
    then: str = ""
    expect: str = ""


# Each scenario: a fresh namespace (or the one the commands name), then the commands in order.
SCENARIOS: dict[str, tuple[str | None, tuple[Step, ...]]] = {
    "readme": (
        None,
        (
            Step("helm install qatchart helm/qat --timeout 30m", expect="STATUS: deployed"),
            Step("kubectl logs -f job/qatchart-training", expect=TRAINING_LOG[-1]),
            Step("helm test qatchart --logs", expect="Phase:          Succeeded"),
            Step(
                "helm install qatserve helm/qat --no-hooks --set training.enabled=false "
                "--set persistence.existingClaim=qatchart-models --set model.version=1",
                expect="serves bert-qa/1 from\n   PVC qatchart-models",
            ),
            Step(".venv/bin/qatflow status qatchart", expect="==> query it:"),
        ),
    ),
    "onnxruntime": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 30m --set inference.backend=onnxruntime",
                expect="Backend: onnxruntime",
            ),
        ),
    ),
    "multinode": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 30m -f helm/qat/ci/multinode-values.yaml",
                expect="# 3 pods train together",
            ),
        ),
    ),
    "ovms": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 30m --set inference.backend=ovms",
                expect="Backend: ovms",
            ),
            Step(
                "POD=$(kubectl get pod -l app.kubernetes.io/instance=qatchart,"
                "app.kubernetes.io/component=inference -o name | head -n 1)",
                then='printf "%s" "$POD"',
                expect="pod/qatchart-ovms-",
            ),
            Step(
                "helm install qatserve helm/qat --no-hooks --set training.enabled=false "
                "--set persistence.existingClaim=qatchart-models --set model.name=bert-qa "
                "--set model.version=1 --set inference.backend=ovms",
                expect="STATUS: deployed",
            ),
        ),
    ),
    # docs/kubernetes.md follows a release in namespace default.
    "watching": (
        "default",
        (
            Step("helm install qatchart helm/qat --timeout 30m", expect="STATUS: deployed"),
            Step("kubectl logs -f job/qatchart-training", expect=TRAINING_LOG[0]),
            Step(
                "qatflow status qatchart --namespace default",
                expect="==> accuracy summary: qat | baseline f1 80.12",
            ),
        ),
    ),
    "distillation": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 60m "
                "--set training.activeDeadlineSeconds=3300 --set training.preset=distillation "
                "--set training.settings.student_layers=3",
                expect="STATUS: deployed",
            ),
        ),
    ),
    "preset": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 30m --set training.preset=distillation",
                expect="STATUS: deployed",
            ),
        ),
    ),
    "classification-preset": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --timeout 30m "
                "--set 'training.preset={distillation_qat,sst2}' "
                "--set training.settings.task=text-classification --set model.name=bert-classifier",
                expect="Have it classify a text",
            ),
        ),
    ),
    # The PyTorchJob section: inference only on a ReadWriteMany claim made beforehand.
    "pytorchjob": (
        None,
        (
            Step(
                "helm install qatchart helm/qat --no-hooks --set training.enabled=false "
                "--set persistence.existingClaim=qat-models",
                expect="PVC qat-models",
            ),
        ),
    ),
}

# Documented commands that cannot run against simulated nodes, and why.
NOT_HERE = {
    "kubectl port-forward service/qatchart-optimum 8080:8080 &": (
        "port-forward reaches a running container through its kubelet; simulated nodes run none "
        "(the full tier, tests/cluster/e2e, runs it on a free local port and asks through it)"
    ),
    "kubectl port-forward service/qatchart-ovms 9000:9000 &": (
        "port-forward reaches a running container through its kubelet; simulated nodes run none"
    ),
    'kubectl cp "${POD#pod/}:/models/bert-qa" ./models/bert-qa -c ovms': (
        "kubectl cp runs tar inside the OVMS container; simulated nodes run no container"
    ),
    "kubectl apply -f models-pvc.yaml": (
        "the user's own manifest (not in the docs); the pytorchjob scenario creates the "
        "ReadWriteMany claim qat-models it describes"
    ),
    "kubectl apply -f qatflow-pytorchjob.yaml": (
        "needs the Kubeflow training operator's PyTorchJob CRD, which this cluster does not have"
    ),
}


def test_every_documented_command_is_run_or_says_why_not():
    documented = {command.key: command for command in documented_commands()}
    run = {" ".join(step.command.split()) for _, steps in SCENARIOS.values() for step in steps}
    unaccounted = set(documented) - run - set(NOT_HERE)
    assert not unaccounted, "documented but neither run nor excused: " + "; ".join(
        f"{documented[key].document}:{documented[key].line} {key}" for key in sorted(unaccounted)
    )
    # And nothing is run or excused that the docs no longer say.
    assert (run | set(NOT_HERE)) <= set(documented), sorted((run | set(NOT_HERE)) - set(documented))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_documented_commands_run(namespace: Namespace, scenario: str) -> None:
    name, steps = SCENARIOS[scenario]
    if name is not None:
        namespace = namespace.elsewhere(name)
    namespace.script("training", TRAINS)
    if scenario == "pytorchjob":
        namespace.create_claim("qat-models", access_mode="ReadWriteMany")
    for step in steps:
        result = namespace.shell("\n".join(filter(None, (documented(step.command), step.then))))
        said = result.stdout + result.stderr
        assert result.returncode == 0, f"{step.command}\n{said}"
        assert step.expect in said, f"{step.command}\n{said}"
    # Whatever the commands deployed becomes available.
    namespace.kubectl("wait", "--for=condition=Available", "deployment", "--all", "--timeout=60s")


def documented(key: str) -> str:
    """The command as the docs write it, found by its words."""
    return as_written(documented_commands(), key)
