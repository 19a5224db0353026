"""What a pod's status says is wrong, read the way ``kubectl describe pod`` shows it."""

from __future__ import annotations

from typing import Any

from qatflow.cluster.problems import ImagePullFailed
from qatflow.core.outcome import EXIT_CODES, EXIT_PUBLISHED

# Waiting reasons that never clear up without a change to the image or its pull secret.
IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)

# What the training container's exit code says: the training command's own codes, and the
# one Kubernetes gives a container it killed.
TRAINING_EXIT_REASONS = {
    **{code: meaning for code, meaning in EXIT_CODES.items() if code != EXIT_PUBLISHED},
    137: "killed (out of memory or past activeDeadlineSeconds)",
}


def container_statuses(pod: Any) -> list[Any]:
    status = pod.status
    if status is None:
        return []
    return list(status.init_container_statuses or []) + list(status.container_statuses or [])


def check_image_pull(pod: Any) -> None:
    """Raise ImagePullFailed when any container of the pod cannot get its image."""
    for container in container_statuses(pod):
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in IMAGE_PULL_REASONS:
            detail = f": {waiting.message}" if waiting.message else ""
            raise ImagePullFailed(
                f"pod {pod.metadata.name} cannot pull image {container.image} "
                f"({waiting.reason}){detail}. Check the image name and tag, the registry and "
                f"imagePullSecrets."
            )


def started(pod: Any, container_name: str) -> bool:
    """True once the container runs or ran, so that its logs can be read."""
    for container in container_statuses(pod):
        if container.name == container_name and container.state is not None:
            return container.state.running is not None or container.state.terminated is not None
    return False


def termination(pod: Any, container_name: str) -> Any | None:
    """The container's terminated state (exit code, reason), if it has ended."""
    for container in container_statuses(pod):
        if container.name != container_name or container.state is None:
            continue
        if container.state.terminated is not None:
            return container.state.terminated
        if container.last_state is not None and container.last_state.terminated is not None:
            return container.last_state.terminated
    return None


def describe_exit(exit_code: int) -> str:
    return TRAINING_EXIT_REASONS.get(exit_code, f"training exited with code {exit_code}")


def waiting_reason(pod: Any) -> str | None:
    """The first waiting reason of a container (e.g. CrashLoopBackOff, ContainerCreating)."""
    for container in container_statuses(pod):
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason:
            return f"{container.name}: {waiting.reason}"
    return None


def claim_names(pod: Any) -> list[str]:
    """PersistentVolumeClaims the pod mounts."""
    volumes = pod.spec.volumes or [] if pod.spec else []
    return [v.persistent_volume_claim.claim_name for v in volumes if v.persistent_volume_claim]


def is_unschedulable(pod: Any) -> str | None:
    """The scheduler's message when the pod is Pending because it cannot be placed."""
    if pod.status is None or pod.status.phase != "Pending":
        return None
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return condition.message or condition.reason or "unschedulable"
    return None
