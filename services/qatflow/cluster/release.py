"""Follow one Helm release: its training hook Job, then its inference Deployment.

Everything is found by the chart's labels, as ``kubectl get -l`` would:
``app.kubernetes.io/instance=<release>`` plus ``app.kubernetes.io/component`` =
``training`` (the pre-install hook Job) or ``inference`` (the backend's Deployment and Service).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qatflow.cluster import diagnosis
from qatflow.cluster.problems import (
    ClusterUnavailable,
    StatusTimeout,
    TrainingFailed,
    VolumeClaimPending,
)
from qatflow.core.backends import OVMS
from qatflow.core.logs import format_seconds
from qatflow.core.outcome import TrainingOutcome
from qatflow.core.tasks import QUESTION_ANSWERING, TEXT_CLASSIFICATION

INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
TRAINING = "training"
INFERENCE = "inference"
TRAINING_CONTAINER = "training"

_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
_MODEL_READY_PATH = re.compile(r"^/v2/models/([^/]+)/ready$")


class _LogNotReady(Exception):
    """The pod's log cannot be read yet."""


@dataclass
class TrainingRun:
    job: str | None
    # What the training container reported as it exited (its termination message).
    outcome: TrainingOutcome | None = None


@dataclass
class ServiceEndpoint:
    deployment: str
    service: str | None
    backend: str
    ports: dict[str, int] = field(default_factory=dict)
    model: str | None = None


@dataclass
class _Clock:
    timeout: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def check(self, waiting_for: str) -> None:
        if self.remaining() <= 0:
            raise StatusTimeout(
                f"timed out after {format_seconds(self.timeout)} waiting for {waiting_for}"
            )


class ReleaseFollower:
    """Watches a release through the Kubernetes API and reports what a user needs to know."""

    def __init__(
        self,
        api_client: Any,
        release: str,
        namespace: str,
        *,
        timeout: float,
        poll_interval: float = 2.0,
        volume_grace: float = 120.0,
        show_logs: bool = True,
        say: Callable[[str], None] = print,
        echo: Callable[[str], None] = print,
    ) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.release = release
        self.namespace = namespace
        self.clock = _Clock(timeout)
        self.poll_interval = poll_interval
        self.volume_grace = volume_grace
        self.show_logs = show_logs
        self.say = say  # status lines
        self.echo = echo  # the training pod's own log lines
        self._pending_claims: dict[str, float] = {}

    # -- training ---------------------------------------------------------------------------

    def follow_training(self) -> TrainingRun:
        """Stream the training Job's pod logs until it completes; raise if it fails."""
        job = self._wait_for_job()
        if job is None:
            self.say(
                "no training Job (installed with --no-hooks, or already cleaned up by its TTL)"
            )
            return TrainingRun(job=None)
        name = job.metadata.name
        self.say(f"training Job {name}: following its pod logs")
        streamed: set[str] = set()
        while True:
            job = self._read_job(name)
            pods = self._job_pods(job) if job is not None else []
            for pod in pods:
                diagnosis.check_image_pull(pod)
                self._check_volumes(pod)
                if pod.metadata.name in streamed or not diagnosis.started(pod, TRAINING_CONTAINER):
                    continue
                streamed.add(pod.metadata.name)
                if len(streamed) > 1:
                    self.say(f"training retried in pod {pod.metadata.name}")
                try:
                    for line in self._pod_log(pod.metadata.name):
                        if self.show_logs:
                            self.echo(line)
                except _LogNotReady:
                    streamed.discard(pod.metadata.name)
            if job is None:
                self.say(f"training Job {name} was deleted (ttlSecondsAfterFinished); going on")
                return TrainingRun(job=name)
            finished = _finished(job)
            if finished == "Complete":
                run = TrainingRun(name, _reported(self._job_pods(job)))
                self.say(f"training Job {name} complete")
                if run.outcome is not None:
                    if run.outcome.summary:
                        self.say(f"accuracy summary: {run.outcome.summary}")
                    self.say(run.outcome.message)
                return run
            if finished == "Failed":
                raise TrainingFailed(self._failure_reason(job, self._job_pods(job)))
            self.clock.check(f"training Job {name} to finish")
            self._nap()

    def _wait_for_job(self) -> Any | None:
        """The newest training Job of the release; None when the release has none (no hooks)."""
        while True:
            jobs = self._list(self.batch.list_namespaced_job, TRAINING)
            if jobs:
                return max(jobs, key=lambda j: j.metadata.creation_timestamp)
            if self._list(self.apps.list_namespaced_deployment, INFERENCE):
                return None
            self.clock.check(
                f"a Job or Deployment labelled {INSTANCE_LABEL}={self.release} in namespace "
                f"{self.namespace} (is the release installed there?)"
            )
            self._nap()

    def _read_job(self, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call(self.batch.read_namespaced_job, name, self.namespace, _raw=True)
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClusterUnavailable(_api_error(error)) from None

    def _job_pods(self, job: Any) -> list[Any]:
        labels = job.spec.selector.match_labels if job.spec.selector else None
        selector = ",".join(
            f"{k}={v}" for k, v in (labels or {"job-name": job.metadata.name}).items()
        )
        pods = self._call(
            self.core.list_namespaced_pod, self.namespace, label_selector=selector
        ).items
        if job.spec.completion_mode == "Indexed":
            # A multi-node run: rank 0 (completion index 0) evaluates and publishes, so its log
            # is the job's story; the other ranks' pods are not retries of it.
            pods = [
                pod
                for pod in pods
                if (pod.metadata.annotations or {}).get(_COMPLETION_INDEX) == "0"
            ]
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp)

    def _pod_log(self, pod: str) -> Iterator[str]:
        """Follow the container's log until it ends (the container exits) or time runs out."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._call(
                self.core.read_namespaced_pod_log,
                pod,
                self.namespace,
                container=TRAINING_CONTAINER,
                follow=True,
                _preload_content=False,
                _request_timeout=(10, max(self.clock.remaining(), 1)),
                _raw=True,
            )
        except ApiException as error:
            if error.status == 400:  # the status said started, the kubelet not yet: next poll
                raise _LogNotReady from None
            raise ClusterUnavailable(_api_error(error)) from None
        pending = b""
        try:
            for chunk in response.stream(4096, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace").rstrip("\r")
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError) as error:
            if isinstance(error, urllib3.exceptions.ReadTimeoutError):
                raise StatusTimeout(
                    f"timed out after {format_seconds(self.clock.timeout)} following pod {pod}"
                ) from None
        finally:
            response.release_conn()
        if pending:
            yield pending.decode("utf-8", "replace")

    def _failure_reason(self, job: Any, pods: list[Any]) -> str:
        condition = next(
            c for c in job.status.conditions if c.type == "Failed" and c.status == "True"
        )
        reason = f"training Job {job.metadata.name} failed ({condition.reason or 'Failed'})"
        ended = [t for p in pods if (t := diagnosis.termination(p, TRAINING_CONTAINER)) is not None]
        reported = _reported(pods)
        if reported is not None:
            reason += f": {reported.message}"
            if reported.summary:
                reason += f"\n  accuracy summary: {reported.summary}"
        elif ended:
            reason += f": {diagnosis.describe_exit(ended[-1].exit_code)}"
            # Killed before it could report: Kubernetes kept the end of its log instead.
            tail = (ended[-1].message or "").strip().splitlines()[-5:]
            if tail:
                reason += "\n  last log lines:\n" + "\n".join(f"    {line}" for line in tail)
        elif condition.message:
            reason += f": {condition.message}"
        return reason + f"\n  see: kubectl logs -n {self.namespace} job/{job.metadata.name}"

    # -- inference --------------------------------------------------------------------------

    def wait_for_service(self) -> ServiceEndpoint:
        """Wait until the release's inference Deployment is available; raise on a stuck pod."""
        announced: set[str] = set()
        while True:
            deployments = self._list(self.apps.list_namespaced_deployment, INFERENCE)
            for deployment in deployments:
                name = deployment.metadata.name
                if name not in announced:
                    announced.add(name)
                    self.say(f"waiting for Deployment {name} to become available")
                pods = self._call(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=_selector(deployment.spec.selector.match_labels),
                ).items
                for pod in pods:
                    diagnosis.check_image_pull(pod)
                    self._check_volumes(pod)
                if _available(deployment):
                    endpoint = self._endpoint(deployment)
                    self.say(f"Deployment {name} is available ({endpoint.backend})")
                    return endpoint
                waiting = sorted({w for p in pods if (w := diagnosis.waiting_reason(p))})
                self.clock.check(
                    f"Deployment {name} to become available"
                    + (f" (pods waiting: {', '.join(waiting)})" if waiting else "")
                )
            if not deployments:
                self.clock.check(
                    f"a Deployment labelled {INSTANCE_LABEL}={self.release},"
                    f"{COMPONENT_LABEL}={INFERENCE} in namespace {self.namespace}"
                )
            self._nap()

    def _endpoint(self, deployment: Any) -> ServiceEndpoint:
        container = deployment.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env or []}
        backend = (
            OVMS
            if "model_server" in (container.image or "")
            else env.get("QATFLOW_SERVE_BACKEND", "http")
        )
        model = None
        probe = container.readiness_probe
        path = probe.http_get.path if probe is not None and probe.http_get is not None else None
        if match := _MODEL_READY_PATH.match(path or ""):
            model = match.group(1)
        model = model or env.get("QATFLOW_SERVE_MODEL_NAME") or None
        services = [
            s
            for s in self._list(self.core.list_namespaced_service, INFERENCE)
            if _matches(deployment.spec.template.metadata.labels or {}, s.spec.selector or {})
        ]
        if not services:
            return ServiceEndpoint(deployment.metadata.name, None, backend, model=model)
        service = services[0]
        ports = {(p.name or str(p.port)): p.port for p in service.spec.ports or []}
        return ServiceEndpoint(
            deployment.metadata.name, service.metadata.name, backend, ports, model
        )

    # -- shared -----------------------------------------------------------------------------

    def _check_volumes(self, pod: Any) -> None:
        """Raise VolumeClaimPending when the pod waits on an unbound claim past the grace time."""
        if diagnosis.is_unschedulable(pod) is None:
            return
        for claim in diagnosis.claim_names(pod):
            pvc = self._read_claim(claim)
            if pvc is not None and (pvc.status is None or pvc.status.phase != "Pending"):
                continue
            first_seen = self._pending_claims.setdefault(claim, time.monotonic())
            if time.monotonic() - first_seen < self.volume_grace:
                continue
            if pvc is None:
                raise VolumeClaimPending(
                    f"pod {pod.metadata.name} waits for PersistentVolumeClaim {claim}, which does "
                    f"not exist. The chart creates it in its pre-install hook, which "
                    f"`helm install --no-hooks` skips: for inference only, install with "
                    f"--set training.enabled=false --set persistence.existingClaim=<the claim "
                    f"holding the models>; to train, install without --no-hooks."
                )
            events = self._call(
                self.core.list_namespaced_event,
                self.namespace,
                field_selector=f"involvedObject.kind=PersistentVolumeClaim,involvedObject.name={claim}",
            ).items
            latest = max(events, key=_event_time, default=None)
            why = f": {latest.reason}: {latest.message}" if latest is not None else ""
            storage_class = pvc.spec.storage_class_name if pvc.spec else None
            raise VolumeClaimPending(
                f"pod {pod.metadata.name} waits for PersistentVolumeClaim {claim}, still Pending "
                f"(storageClass {storage_class or 'cluster default'}){why}. Set "
                f"persistence.storageClass, persistence.existingClaim or the hostPath option."
            )

    def _read_claim(self, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call(
                self.core.read_namespaced_persistent_volume_claim, name, self.namespace, _raw=True
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise ClusterUnavailable(_api_error(error)) from None

    def _list(self, method: Callable[..., Any], component: str) -> list[Any]:
        selector = f"{INSTANCE_LABEL}={self.release},{COMPONENT_LABEL}={component}"
        return list(self._call(method, self.namespace, label_selector=selector).items)

    def _call(
        self, method: Callable[..., Any], *args: Any, _raw: bool = False, **kwargs: Any
    ) -> Any:
        """Call the API; errors become ClusterUnavailable (``_raw``: ApiException passes)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", 30)
        try:
            return method(*args, **kwargs)
        except ApiException as error:
            if _raw:
                raise
            raise ClusterUnavailable(_api_error(error)) from None
        except HTTPError as error:
            raise ClusterUnavailable(f"cannot reach the Kubernetes API: {error}") from None

    def _nap(self) -> None:
        time.sleep(max(0.0, min(self.poll_interval, self.clock.remaining())))


# What `qatflow ask` sends, per task; a release that did not train here (inference only) does
# not say which task its model has, so both are shown.
_EXAMPLE_INPUTS = {
    QUESTION_ANSWERING: '--question "What does QAT stand for?" '
    '--context "QAT stands for quantization aware training."',
    TEXT_CLASSIFICATION: '--text "The service answered quickly and correctly."',
}


def query_instructions(
    endpoint: ServiceEndpoint, namespace: str, task: str | None = None
) -> list[str]:
    """How to reach and query the service from a workstation, as commands to paste; the
    example input is the model's ``task``'s (every task's when it is not known)."""
    if endpoint.service is None:
        return [
            f"the Deployment {endpoint.deployment} has no Service labelled "
            f"{COMPONENT_LABEL}={INFERENCE}"
        ]
    inputs = [_EXAMPLE_INPUTS[task]] if task in _EXAMPLE_INPUTS else list(_EXAMPLE_INPUTS.values())
    if endpoint.backend == OVMS:
        grpc = endpoint.ports.get("grpc", 9000)
        model = endpoint.model or "bert-qa"
        forward = f"kubectl port-forward -n {namespace} svc/{endpoint.service} {grpc}:{grpc}"
        ask = (
            f"qatflow ask --grpc 127.0.0.1:{grpc} --protocol kserve --model {model} "
            "--models-dir <a local copy of the models volume>"
        )
    else:
        port = endpoint.ports.get("http", next(iter(endpoint.ports.values()), 8080))
        forward = f"kubectl port-forward -n {namespace} svc/{endpoint.service} 8080:{port}"
        ask = "qatflow ask --url http://127.0.0.1:8080"
    return [forward, *(f"{ask} {example}" for example in inputs)]


def _finished(job: Any) -> str | None:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.status == "True" and condition.type in ("Complete", "Failed"):
            return str(condition.type)
    return None


def _available(deployment: Any) -> bool:
    status, wanted = deployment.status, deployment.spec.replicas or 1
    if status is None or (status.observed_generation or 0) < (deployment.metadata.generation or 0):
        return False
    available = any(c.type == "Available" and c.status == "True" for c in status.conditions or [])
    return (
        available
        and (status.available_replicas or 0) >= wanted
        and (status.updated_replicas or 0) >= wanted
    )


def _selector(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items())


def _matches(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _event_time(event: Any) -> Any:
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp


def _reported(pods: list[Any]) -> TrainingOutcome | None:
    """What the newest pod's training container reported as it exited (termination message)."""
    for pod in reversed(pods):
        ended = diagnosis.termination(pod, TRAINING_CONTAINER)
        if ended is not None:
            return TrainingOutcome.from_json(ended.message)
    return None


def _api_error(error: Any) -> str:
    try:
        message = json.loads(error.body).get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return f"Kubernetes API error {error.status} {error.reason}: {message or error.body}"
