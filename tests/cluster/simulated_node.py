"""Simulated nodes for the real control plane: the one part of the cluster that is not real.

The API server, etcd, controllers and scheduler are the real programs (control_plane.py). What
a kubelet, its container runtime and a storage provisioner would do is simulated here, and
only that:

- **Nodes.** Each node of ``NODES`` is registered Ready with its labels, taints and capacity
  (cpu, memory, pods and extended resources such as ``nvidia.com/gpu``) and kept alive by Lease
  heartbeats, so the node lifecycle controller and the scheduler treat it as a live node.
- **Containers.** Nothing runs and no image is pulled. A pod the scheduler bound to a simulated
  node gets a pod IP, its init containers end at once with code 0 and its containers are
  reported running. Readiness comes from the pod's script, not from probes. A pod that runs to
  completion (``restartPolicy`` Never or OnFailure: Job and ``helm test`` pods) ends after the
  script's time with the script's exit code, reason and termination message, as the kubelet
  reports a container that wrote that message and exited. A script can instead keep a
  container waiting (``ErrImagePull``, ``CrashLoopBackOff``...).
- **Logs.** The kubelet's ``/containerLogs`` endpoint is served (HTTPS, a certificate of the
  test CA) with the script's lines, so ``kubectl logs``, ``helm test --logs`` and
  ``qatflow status`` read them through the real API server; ``follow`` holds the stream open
  until the container ends.
- **Deletions.** A gracefully deleted pod is removed once its "containers" stopped (at once).
- **Storage.** A provisioner for the StorageClasses it creates (``standard``, the default,
  ``nfs-client``, and ``slow``, which takes 3 s) creates a PersistentVolume for each claim,
  pre-bound to it; the real PersistentVolume controller binds them. Claims of any other class,
  or of none, stay Pending.

Scripts are chosen per namespace and ``app.kubernetes.io/component`` label (the chart's
``training``, ``inference`` and ``test``): ``nodes.script(namespace, "training", Script(...))``.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .certificates import KeyPair

log = logging.getLogger("simulated_node")

PROVISIONER = "simulated.qatflow.test/volumes"
COMPONENT = "app.kubernetes.io/component"
KUBERNETES_VERSION = "v1.36.2"
LEASE_SECONDS = 40
HEARTBEAT_SECONDS = 10.0
WATCH_READ_SECONDS = 1.0


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    cpu: str = "8"
    memory: str = "32Gi"
    extended: dict[str, str] = field(default_factory=dict)


# Three plain workers (a multi-node training gang spreads one pod per node) and one node for
# each placement the chart's CI values ask for.
NODES = (
    NodeSpec("worker-a"),
    NodeSpec("worker-b"),
    NodeSpec("worker-c"),
    NodeSpec(
        "training-node",
        labels={"qatflow/role": "training"},
        taints=({"key": "qatflow/training", "effect": "NoSchedule"},),
    ),
    NodeSpec("inference-node", labels={"qatflow/role": "inference"}),
    NodeSpec(
        "gpu-node",
        labels={"nvidia.com/gpu.present": "true"},
        taints=({"key": "nvidia.com/gpu", "effect": "NoSchedule"},),
        extended={"nvidia.com/gpu": "1"},
    ),
)
# Classes the simulated provisioner serves, and how long it takes to provision a volume.
STORAGE_CLASSES = {"standard": 0.0, "nfs-client": 0.0, "slow": 3.0}
DEFAULT_STORAGE_CLASS = "standard"


@dataclass(frozen=True)
class Script:
    """What the containers of a pod do on a simulated node."""

    exit_code: int = 0
    # Run time of a pod that runs to completion.
    seconds: float = 0.3
    log: tuple[str, ...] = ()
    # What the container wrote to its terminationMessagePath.
    message: str = ""
    # Terminated reason; default Completed (exit 0) or Error.
    reason: str | None = None
    # A container that never starts: ErrImagePull, ImagePullBackOff, CrashLoopBackOff...
    waiting: str | None = None
    waiting_message: str = ""
    ready: bool = True


Chooser = Script | Callable[[dict[str, Any]], Script]


@dataclass
class _Running:
    """A pod whose containers the simulator runs."""

    script: Script
    containers: tuple[str, ...]
    ended: threading.Event = field(default_factory=threading.Event)


class SimulatedNodes:
    """Registers ``NODES`` on the cluster behind ``api_client`` and plays their kubelets."""

    def __init__(self, api_client: Any, kubelet_pair: KeyPair) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self._scripts: dict[tuple[str, str | None], Chooser] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._handled: set[str] = set()
        self._timers: list[threading.Timer] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._addresses = (f"10.244.{n // 250}.{n % 250 + 2}" for n in itertools.count())
        self._logs = _LogServer(self, kubelet_pair)

    # -- what tests use ---------------------------------------------------------------------

    def script(self, namespace: str, component: str | None, chooser: Chooser) -> None:
        """Containers of ``namespace``'s pods labelled ``component`` (None: any) do this."""
        with self._lock:
            self._scripts[(namespace, component)] = chooser

    def start(self) -> None:
        self._logs.start()
        self._create_storage_classes()
        for spec in NODES:
            self._register(spec)
        for target in (self._heartbeat, self._follow_pods, self._follow_claims):
            thread = threading.Thread(target=target, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wait_schedulable()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            for running in self._running.values():
                running.ended.set()
        self._logs.stop()
        # Watches read with a short timeout, so they notice and close their connection: the API
        # server's shutdown waits for open watches.
        for thread in self._threads:
            thread.join(timeout=2 * WATCH_READ_SECONDS)

    # -- nodes ------------------------------------------------------------------------------

    def _register(self, spec: NodeSpec) -> None:
        capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": "110", **spec.extended}
        labels = {
            "kubernetes.io/hostname": spec.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **spec.labels,
        }
        self.core.create_node(
            {
                "metadata": {"name": spec.name, "labels": labels},
                "spec": {"taints": [dict(taint) for taint in spec.taints]},
            }
        )
        now = _now()
        conditions = [
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for kind, status, reason in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
                ("Ready", "True", "KubeletReady"),
            )
        ]
        self.core.patch_node_status(
            spec.name,
            {
                "status": {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "conditions": conditions,
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": spec.name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self._logs.port}},
                    "nodeInfo": {
                        "architecture": "amd64",
                        "operatingSystem": "linux",
                        "kubeletVersion": KUBERNETES_VERSION,
                        "containerRuntimeVersion": "simulated://1.0",
                        "kernelVersion": "",
                        "osImage": "simulated node",
                        "machineID": spec.name,
                        "systemUUID": spec.name,
                        "bootID": spec.name,
                    },
                }
            },
        )
        self._renew_lease(spec.name, create=True)

    def _renew_lease(self, node: str, *, create: bool = False) -> None:
        from kubernetes import client

        leases = client.CoordinationV1Api(self.core.api_client)
        spec = {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _now(micro=True),
        }
        if create:
            leases.create_namespaced_lease(
                "kube-node-lease", {"metadata": {"name": node}, "spec": spec}
            )
        else:
            leases.patch_namespaced_lease(node, "kube-node-lease", {"spec": spec})

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            for spec in NODES:
                with contextlib.suppress(Exception):
                    self._renew_lease(spec.name)

    def _wait_schedulable(self, timeout: float = 60.0) -> None:
        """Until the node lifecycle controller lifted the not-ready taints it puts on new nodes."""
        deadline = time.monotonic() + timeout
        while True:
            tainted = [
                node.metadata.name
                for node in self.core.list_node().items
                if any(t.key.startswith("node.kubernetes.io/") for t in node.spec.taints or [])
            ]
            if not tainted:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes still tainted not-ready after {timeout} s: {tainted}")
            time.sleep(0.2)

    # -- pods -------------------------------------------------------------------------------

    def _follow_pods(self) -> None:
        names = {spec.name for spec in NODES}
        for kind, pod in self._watch(self.core.list_pod_for_all_namespaces):
            if kind == "DELETED" or pod["spec"].get("nodeName") not in names:
                if kind == "DELETED":
                    self._forget(pod)
                continue
            try:
                self._on_pod(pod)
            except Exception:  # one bad update must not stop every node
                log.exception("pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _on_pod(self, pod: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        metadata = pod["metadata"]
        namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
        if metadata.get("deletionTimestamp"):
            self._forget(pod)
            # The containers are gone at once: confirm, as the kubelet does, with no grace left.
            # (The body's options beat the query's: gracePeriodSeconds goes in the body.)
            try:
                self.core.delete_namespaced_pod(
                    name, namespace, body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
                )
            except ApiException as error:
                if error.status not in (404, 409):  # gone already, or a namesake
                    raise
            return
        with self._lock:
            if uid in self._handled:
                return
            self._handled.add(uid)
        script = self._script_for(pod)
        containers = tuple(c["name"] for c in pod["spec"]["containers"])
        running = _Running(script, containers)
        with self._lock:
            self._running[(namespace, name)] = running
        now = _now()
        containers_of = pod["spec"]["containers"]
        if script.waiting:
            waiting = {"reason": script.waiting, "message": script.waiting_message or None}
            self._patch_status(
                pod,
                {
                    "phase": "Pending",
                    "hostIP": "127.0.0.1",
                    "startTime": now,
                    "containerStatuses": [
                        _container(spec, {"waiting": waiting}) for spec in containers_of
                    ],
                },
            )
            return
        ready = "True" if script.ready else "False"
        self._patch_status(
            pod,
            {
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": (address := next(self._addresses)),
                "podIPs": [{"ip": address}],
                "startTime": now,
                "conditions": [
                    _condition("PodReadyToStartContainers", "True", now),
                    _condition("Initialized", "True", now),
                    _condition("ContainersReady", ready, now),
                    _condition("Ready", ready, now),
                ],
                "initContainerStatuses": [
                    _container(spec, _terminated(Script(), now), uid)
                    for spec in pod["spec"].get("initContainers") or []
                ],
                "containerStatuses": [
                    _container(spec, {"running": {"startedAt": now}}, uid, ready=script.ready)
                    for spec in containers_of
                ],
            },
        )
        if pod["spec"].get("restartPolicy", "Always") != "Always":
            self._later(script.seconds, self._finish, pod, running, now)

    def _finish(self, pod: dict[str, Any], running: _Running, started: str) -> None:
        """The containers of a run-to-completion pod exit as the script says."""
        script, now, uid = running.script, _now(), pod["metadata"]["uid"]
        try:
            self._patch_status(
                pod,
                {
                    "phase": "Succeeded" if script.exit_code == 0 else "Failed",
                    "conditions": [
                        _condition("ContainersReady", "False", now, "PodCompleted"),
                        _condition("Ready", "False", now, "PodCompleted"),
                    ],
                    "containerStatuses": [
                        _container(spec, _terminated(script, started), uid)
                        for spec in pod["spec"]["containers"]
                    ],
                },
            )
        except Exception:
            log.exception("finishing pod %s", pod["metadata"]["name"])
        running.ended.set()

    def _later(self, seconds: float, action: Callable[..., None], *args: Any) -> None:
        timer = threading.Timer(seconds, action, args)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    def _script_for(self, pod: dict[str, Any]) -> Script:
        namespace = pod["metadata"]["namespace"]
        component = (pod["metadata"].get("labels") or {}).get(COMPONENT)
        with self._lock:
            chooser = self._scripts.get((namespace, component)) or self._scripts.get(
                (namespace, None), Script()
            )
        return chooser(pod) if callable(chooser) else chooser

    def _forget(self, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self._lock:
            running = self._running.pop(key, None)
        if running is not None:
            running.ended.set()

    def running(self, namespace: str, name: str) -> _Running | None:
        with self._lock:
            return self._running.get((namespace, name))

    def _patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(
            pod["metadata"]["name"], pod["metadata"]["namespace"], {"status": status}
        )

    # -- storage ----------------------------------------------------------------------------

    def _create_storage_classes(self) -> None:
        from kubernetes import client

        storage = client.StorageV1Api(self.core.api_client)
        for name in STORAGE_CLASSES:
            annotations = (
                {"storageclass.kubernetes.io/is-default-class": "true"}
                if name == DEFAULT_STORAGE_CLASS
                else {}
            )
            storage.create_storage_class(
                {
                    "metadata": {"name": name, "annotations": annotations},
                    "provisioner": PROVISIONER,
                    "reclaimPolicy": "Delete",
                    "volumeBindingMode": "Immediate",
                }
            )

    def _follow_claims(self) -> None:
        for kind, claim in self._watch(self.core.list_persistent_volume_claim_for_all_namespaces):
            try:
                if kind == "DELETED":
                    self._release(claim)
                else:
                    self._provision(claim)
            except Exception:
                log.exception("claim %s", claim["metadata"]["name"])

    def _provision(self, claim: dict[str, Any]) -> None:
        spec, metadata = claim["spec"], claim["metadata"]
        if spec.get("volumeName") or (claim.get("status") or {}).get("phase") != "Pending":
            return
        if spec.get("storageClassName") not in STORAGE_CLASSES:
            return
        with self._lock:
            if metadata["uid"] in self._handled:
                return
            self._handled.add(metadata["uid"])
        self._later(STORAGE_CLASSES[spec["storageClassName"]], self._create_volume, claim)

    def _create_volume(self, claim: dict[str, Any]) -> None:
        spec, metadata = claim["spec"], claim["metadata"]
        self.core.create_persistent_volume(
            {
                "metadata": {
                    "name": f"pvc-{metadata['uid']}",
                    "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                },
                "spec": {
                    "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                    "accessModes": spec["accessModes"],
                    "storageClassName": spec["storageClassName"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": f"/simulated/volumes/{metadata['uid']}"},
                    "claimRef": {
                        "kind": "PersistentVolumeClaim",
                        "apiVersion": "v1",
                        "namespace": metadata["namespace"],
                        "name": metadata["name"],
                        "uid": metadata["uid"],
                    },
                },
            }
        )

    def _release(self, claim: dict[str, Any]) -> None:
        """The Delete reclaim policy of a provisioned volume: remove it with its claim."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_persistent_volume(f"pvc-{claim['metadata']['uid']}")
        except ApiException as error:
            if error.status != 404:
                raise

    # -- watching ---------------------------------------------------------------------------

    def _watch(self, list_call: Callable[..., Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every object once, then every change, until stop(); resumes after expired watches."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        version = None
        while not self._stop.is_set():
            try:
                if version is None:
                    body = json.loads(list_call(_preload_content=False).data)
                    version = body["metadata"]["resourceVersion"]
                    for item in body["items"]:
                        yield "ADDED", item
                response = list_call(
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=60,
                    _preload_content=False,
                    _request_timeout=(10, WATCH_READ_SECONDS),
                )
                try:
                    for line in iter_resp_lines(response):
                        event = json.loads(line)
                        if event["type"] == "ERROR":  # expired: list again
                            version = None
                            break
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            yield event["type"], event["object"]
                finally:
                    response.release_conn()
            except urllib3.exceptions.ReadTimeoutError:
                continue  # quiet for a while: look at the stop flag, watch on
            except ApiException as error:
                if error.status == 410:  # expired: list again
                    version = None
                elif not self._stop.is_set():
                    log.warning("watching with %s: %s", list_call.__name__, error)
                    self._stop.wait(0.5)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("watching with %s", list_call.__name__)
                self._stop.wait(0.5)


class _LogServer:
    """The kubelet's ``/containerLogs/{namespace}/{pod}/{container}`` endpoint, over HTTPS."""

    def __init__(self, nodes: SimulatedNodes, pair: KeyPair) -> None:
        self._nodes = nodes
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert, pair.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        nodes = self._nodes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                if len(segments) != 4 or segments[0] != "containerLogs":
                    self._error(404, f"the simulated kubelet serves no {parts.path}")
                    return
                _, namespace, pod, container = segments
                query = parse_qs(parts.query)
                running = nodes.running(namespace, pod)
                if running is None or container not in running.containers:
                    self._error(404, f'container "{container}" in pod "{pod}" is not known')
                    return
                if running.script.waiting:
                    self._error(
                        400,
                        f'container "{container}" in pod "{pod}" is waiting to start: '
                        f"{running.script.waiting}",
                    )
                    return
                lines = list(running.script.log)
                if "tailLines" in query:
                    lines = lines[-int(query["tailLines"][0]) :] if query["tailLines"][0] else []
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for line in lines:
                    self._chunk((line + "\n").encode())
                if query.get("follow") == ["true"]:
                    running.ended.wait()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _error(self, code: int, message: str) -> None:
                data = message.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _container(
    spec: dict[str, Any], state: dict[str, Any], pod_uid: str = "", *, ready: bool = False
) -> dict[str, Any]:
    """A container status as the kubelet reports it, in ``state`` (waiting/running/terminated)."""
    status = {
        "name": spec["name"],
        "image": spec["image"],
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }
    if "waiting" not in state:
        status["containerID"] = f"simulated://{pod_uid}/{spec['name']}"
    return status


def _terminated(script: Script, started: str) -> dict[str, Any]:
    terminated = {
        "exitCode": script.exit_code,
        "reason": script.reason or ("Completed" if script.exit_code == 0 else "Error"),
        "startedAt": started,
        "finishedAt": _now(),
    }
    if script.message:
        terminated["message"] = script.message
    return {"terminated": terminated}


def _condition(kind: str, status: str, now: str, reason: str | None = None) -> dict[str, Any]:
    condition = {"type": kind, "status": status, "lastTransitionTime": now}
    if reason:
        condition["reason"] = reason
    return condition


def _now(*, micro: bool = False) -> str:
    moment = datetime.datetime.now(datetime.UTC)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
