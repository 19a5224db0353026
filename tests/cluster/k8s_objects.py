"""Kubernetes objects as the API server returns them for a release of the qat chart.

Shapes follow real ``kubectl get -o json`` output of a Helm-installed release: the chart's
``app.kubernetes.io/*`` labels, a pre-install hook Job whose pods carry the Job controller's
labels, a Deployment with its ReplicaSet-stamped pods, a Service, a PVC and its events.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

CREATED = "2026-11-22T01:00:00Z"
LATER = "2026-11-22T01:06:30Z"
TRAINING_IMAGE = "registry.example.com/qatflow/training:0.1.0"


def chart_labels(release: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "qat",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/version": "0.1.0",
        "helm.sh/chart": "qat-0.1.0",
    }


def _metadata(name: str, namespace: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "4242",
        "generation": 1,
        "creationTimestamp": CREATED,
        "labels": labels,
        **extra,
    }


def training_job(release: str, namespace: str, claim: str) -> dict[str, Any]:
    name = f"{release}-qat-training"
    uid = str(uuid.uuid4())
    controller = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
    pod_labels = {
        **chart_labels(release, "training"),
        **controller,
        "batch.kubernetes.io/job-name": name,
        "job-name": name,
    }
    metadata = _metadata(
        name,
        namespace,
        chart_labels(release, "training"),
        annotations={
            "helm.sh/hook": "pre-install",
            "helm.sh/hook-weight": "0",
            "helm.sh/hook-delete-policy": "before-hook-creation",
        },
    )
    metadata["uid"] = uid
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 86400,
            "completionMode": "NonIndexed",
            "completions": 1,
            "parallelism": 1,
            "suspend": False,
            "podReplacementPolicy": "TerminatingOrFailed",
            "manualSelector": False,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "training",
                            "image": TRAINING_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [
                                {"name": "QATFLOW_TRAIN_OUTPUT_DIR", "value": "/models"},
                                {"name": "QATFLOW_TRAIN_MODEL_NAME", "value": "bert-qa"},
                            ],
                            "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                        }
                    ],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim}}],
                },
            },
        },
        "status": {
            "startTime": CREATED,
            "active": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        },
    }


def job_finished(job: dict[str, Any], *, failed: bool) -> None:
    status = job["status"]
    status.update(active=0, ready=0)
    if failed:
        status["failed"] = 1
        conditions = [
            (
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ]
    else:
        status.update(succeeded=1, completionTime=LATER)
        conditions = [
            (
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            ("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]
    status["conditions"] = [
        {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": LATER,
            "lastTransitionTime": LATER,
        }
        for kind, reason, message in conditions
    ]


def job_pod(job: dict[str, Any], suffix: str = "x7k2p") -> dict[str, Any]:
    template = job["spec"]["template"]
    name = f"{job['metadata']['name']}-{suffix}"
    metadata = _metadata(
        name,
        job["metadata"]["namespace"],
        copy.deepcopy(template["metadata"]["labels"]),
        ownerReferences=[
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    )
    return _pod(metadata, copy.deepcopy(template["spec"]))


def _pod(metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("nodeName", "worker-1")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable", "startTime": CREATED},
    }


def set_container_state(pod: dict[str, Any], state: str, **detail: Any) -> None:
    """state: waiting (reason, message), running, or terminated (exitCode, reason)."""
    container = pod["spec"]["containers"][0]
    phase = {"waiting": "Pending", "running": "Running"}.get(state)
    if state == "terminated":
        phase = "Succeeded" if detail.get("exitCode", 0) == 0 else "Failed"
        detail = {
            "startedAt": CREATED,
            "finishedAt": LATER,
            "containerID": "containerd://4f1c",
            **detail,
        }
    elif state == "running":
        detail = {"startedAt": CREATED, **detail}
    pod["status"].update(
        phase=phase,
        conditions=[
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": CREATED},
            {"type": "Initialized", "status": "True", "lastTransitionTime": CREATED},
            {
                "type": "Ready",
                "status": "True" if state == "running" else "False",
                "lastTransitionTime": CREATED,
            },
        ],
        containerStatuses=[
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "" if state == "waiting" else f"{container['image']}@sha256:{'ab' * 32}",
                "ready": state == "running",
                "started": state == "running",
                "restartCount": 0,
                "state": {state: detail},
                "lastState": {},
            }
        ],
    )


def set_unschedulable(pod: dict[str, Any], message: str) -> None:
    pod["spec"].pop("nodeName", None)
    pod["status"] = {
        "phase": "Pending",
        "qosClass": "Burstable",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": CREATED,
            }
        ],
    }


def inference_deployment(release: str, namespace: str, backend: str, claim: str) -> dict[str, Any]:
    name = f"{release}-qat-{backend}"
    selector = {
        "app.kubernetes.io/name": "qat",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/component": "inference",
    }
    if backend == "ovms":
        container = {
            "name": "ovms",
            "image": "openvino/model_server:2026.4.0",
            "args": [
                "--config_path",
                "/config/config.json",
                "--port",
                "9000",
                "--rest_port",
                "8000",
            ],
            "ports": [
                {"name": "grpc", "containerPort": 9000, "protocol": "TCP"},
                {"name": "rest", "containerPort": 8000, "protocol": "TCP"},
            ],
            "readinessProbe": {
                "httpGet": {"path": "/v2/models/bert-qa/ready", "port": "rest", "scheme": "HTTP"},
                "periodSeconds": 5,
                "timeoutSeconds": 1,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        }
    else:
        container = {
            "name": "inference",
            "image": f"registry.example.com/qatflow/{backend}:0.1.0",
            "env": [
                {"name": "QATFLOW_SERVE_BACKEND", "value": backend},
                {"name": "QATFLOW_SERVE_MODELS_DIR", "value": "/models"},
                {"name": "QATFLOW_SERVE_MODEL_NAME", "value": "bert-qa"},
            ],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "readinessProbe": {
                "httpGet": {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"},
                "periodSeconds": 5,
                "timeoutSeconds": 1,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        }
    container["volumeMounts"] = [{"name": "models", "mountPath": "/models", "readOnly": True}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            name,
            namespace,
            chart_labels(release, "inference"),
            annotations={"deployment.kubernetes.io/revision": "1"},
        ),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {**chart_labels(release, "inference")}},
                "spec": {
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "models",
                            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
                        }
                    ],
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "unavailableReplicas": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{name}-6d9f7c" is progressing.',
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
                {
                    "type": "Available",
                    "status": "False",
                    "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.",
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
            ],
        },
    }


def deployment_available(deployment: dict[str, Any]) -> None:
    status = deployment["status"]
    status.pop("unavailableReplicas", None)
    status.update(readyReplicas=1, availableReplicas=1)
    status["conditions"][1].update(
        status="True",
        reason="MinimumReplicasAvailable",
        message="Deployment has minimum availability.",
        lastTransitionTime=LATER,
    )


def deployment_pod(deployment: dict[str, Any], suffix: str = "6d9f7c-q4wz8") -> dict[str, Any]:
    template = deployment["spec"]["template"]
    metadata = _metadata(
        f"{deployment['metadata']['name']}-{suffix}",
        deployment["metadata"]["namespace"],
        {**template["metadata"]["labels"], "pod-template-hash": suffix.split("-")[0]},
        ownerReferences=[
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{deployment['metadata']['name']}-{suffix.split('-')[0]}",
                "uid": str(uuid.uuid4()),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    )
    return _pod(metadata, copy.deepcopy(template["spec"]))


def inference_service(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    meta = deployment["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(meta["name"], meta["namespace"], copy.deepcopy(meta["labels"])),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.43.17.201",
            "clusterIPs": ["10.43.17.201"],
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "selector": deployment["spec"]["selector"]["matchLabels"],
            "ports": [
                {
                    "name": p["name"],
                    "port": p["containerPort"],
                    "targetPort": p["name"],
                    "protocol": "TCP",
                }
                for p in container["ports"]
            ],
        },
        "status": {"loadBalancer": {}},
    }


def volume_claim(
    release: str, namespace: str, name: str, *, phase: str, storage_class: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "volumeMode": "Filesystem",
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    metadata = _metadata(
        name,
        namespace,
        chart_labels(release, "models"),
        annotations={
            "helm.sh/hook": "pre-install",
            "helm.sh/hook-weight": "-10",
            "helm.sh/resource-policy": "keep",
        },
        finalizers=["kubernetes.io/pvc-protection"],
    )
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": phase},
    }


def claim_event(
    claim: dict[str, Any], reason: str, message: str, kind: str = "Warning"
) -> dict[str, Any]:
    meta = claim["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.187a2c3d4e5f6a7b",
            "namespace": meta["namespace"],
            "uid": str(uuid.uuid4()),
            "resourceVersion": "4300",
            "creationTimestamp": CREATED,
        },
        "involvedObject": {
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": "4242",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "persistentvolume-controller"},
        "firstTimestamp": CREATED,
        "lastTimestamp": LATER,
        "count": 12,
        "type": kind,
        "eventTime": None,
        "reportingComponent": "persistentvolume-controller",
        "reportingInstance": "",
    }


def as_created(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A rendered manifest as the API server returns it once created: defaults and a status."""
    obj = copy.deepcopy(obj)
    obj["metadata"].update(
        namespace=namespace,
        uid=str(uuid.uuid4()),
        resourceVersion="4242",
        generation=1,
        creationTimestamp=CREATED,
    )
    if obj["kind"] == "Job":
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        obj["spec"].update(
            selector={"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            completions=1,
            parallelism=1,
            manualSelector=False,
        )
        obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
            }
        )
        obj["status"] = {
            "startTime": CREATED,
            "active": 1,
            "ready": 0,
            "uncountedTerminatedPods": {},
        }
    elif obj["kind"] == "Deployment":
        name = obj["metadata"]["name"]
        obj["spec"].setdefault("replicas", 1)
        obj["status"] = {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "unavailableReplicas": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "message": f'ReplicaSet "{name}-6d9f7c" is progressing.',
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
                {
                    "type": "Available",
                    "status": "False",
                    "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.",
                    "lastUpdateTime": CREATED,
                    "lastTransitionTime": CREATED,
                },
            ],
        }
    elif obj["kind"] == "Service":
        obj["spec"].update(clusterIP="10.43.17.201", clusterIPs=["10.43.17.201"])
        obj["status"] = {"loadBalancer": {}}
    return obj


def start_pod(pod: dict[str, Any]) -> None:
    """Init containers done, the main container running."""
    init = pod["spec"].get("initContainers") or []
    set_container_state(pod, "running")
    pod["status"]["initContainerStatuses"] = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": f"{c['image']}@sha256:{'cd' * 32}",
            "ready": True,
            "restartCount": 0,
            "started": False,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": CREATED,
                    "finishedAt": CREATED,
                    "containerID": "containerd://9e2a",
                }
            },
            "lastState": {},
        }
        for c in init
    ]
