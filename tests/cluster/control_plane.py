"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler, run as processes on loopback ports from the binaries in ``$KUBEBUILDER_ASSETS``
(the directory convention of controller-runtime's envtest; ``../shared/k8s/install.sh`` or the
official release tarballs fill it).

Everything is the real program: admission, RBAC, the Job controller (podFailurePolicy, Indexed
completion, backoff), the scheduler (node selectors, taints, affinity, extended resources), the
PersistentVolume binder and the garbage collector. Nodes are not: see simulated_node.py (or
e2e/node.py for a real one).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qatflow.local import free_port

from .certificates import Authority, KeyPair, signing_key_pair

ASSETS_VARIABLE = "KUBEBUILDER_ASSETS"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
SERVICE_RANGE = "10.96.0.0/16"
FIRST_SERVICE_IP = "10.96.0.1"
START_TIMEOUT = 90.0


class ControlPlaneError(RuntimeError):
    """A control-plane program did not come up; the message carries the end of its log."""


def missing_assets() -> str | None:
    """Why the control plane cannot start here, or None when every binary is in place."""
    directory = os.environ.get(ASSETS_VARIABLE)
    if not directory:
        return (
            f"{ASSETS_VARIABLE} is not set: point it at a directory holding {', '.join(BINARIES)} "
            "(`make test` does, when ../shared/k8s/install.sh exists)"
        )
    absent = [name for name in BINARIES if not os.access(Path(directory) / name, os.X_OK)]
    if absent:
        return f"{ASSETS_VARIABLE}={directory} lacks {', '.join(absent)}"
    return None


@dataclass
class ControlPlane:
    """Starts the four programs in ``root`` (certificates, data, logs) and stops them again."""

    root: Path
    assets: Path = field(default_factory=lambda: Path(os.environ[ASSETS_VARIABLE]))
    api_port: int = 0
    kubelet_pair: KeyPair | None = None
    # Signs what a real node needs (tests/cluster/e2e/node.py) once the plane has started.
    authority: Authority | None = None
    _processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.root / "pki" / "ca.crt"

    def start(self) -> None:
        pki = self.root / "pki"
        authority = self.authority = Authority(pki)
        serving = authority.issue(
            "apiserver",
            "kube-apiserver",
            hosts=(
                "127.0.0.1",
                "localhost",
                FIRST_SERVICE_IP,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server=True,
        )
        accounts = signing_key_pair(pki)
        kubelet_client = authority.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organization="kubelet-api"
        )
        self.kubelet_pair = authority.issue(
            "kubelet", "simulated-kubelet", hosts=("127.0.0.1",), server=True
        )
        clients = {
            "admin": authority.issue("admin", "admin", organization="system:masters"),
            "controller-manager": authority.issue(
                "controller-manager", "system:kube-controller-manager"
            ),
            "scheduler": authority.issue("scheduler", "system:kube-scheduler"),
        }
        etcd_port, peer_port = free_port(), free_port()
        self.api_port = free_port()
        for name, pair in clients.items():
            self.write_kubeconfig(self.root / f"{name}.kubeconfig", pair, namespace="default")

        self._run(
            "etcd",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            # A test cluster's data is thrown away: no fsync on every write.
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._run(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            # A loopback address would make the `kubernetes` Endpoints invalid.
            f"--advertise-address={advertise_address()}",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.root / 'apiserver'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={authority.pair.cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={accounts.cert}",
            f"--service-account-signing-key-file={accounts.key}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            f"--kubelet-certificate-authority={authority.pair.cert}",
            # Simulated nodes publish 127.0.0.1, where their log server listens.
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        )
        self._wait_ready(f"{self.url}/readyz", "kube-apiserver")
        self.write_kubeconfig(self.admin_kubeconfig, clients["admin"], namespace="default")
        manager_port, scheduler_port = free_port(), free_port()
        manager = self.root / "controller-manager.kubeconfig"
        self._run(
            "kube-controller-manager",
            f"--kubeconfig={manager}",
            f"--authentication-kubeconfig={manager}",
            f"--authorization-kubeconfig={manager}",
            "--bind-address=127.0.0.1",
            f"--secure-port={manager_port}",
            f"--cert-dir={self.root / 'controller-manager'}",
            f"--service-account-private-key-file={accounts.key}",
            f"--root-ca-file={authority.pair.cert}",
            f"--cluster-signing-cert-file={authority.pair.cert}",
            f"--cluster-signing-key-file={authority.pair.key}",
            "--use-service-account-credentials",
            "--leader-elect=false",
            # No pod CIDRs to hand out: nodes get no podCIDR, pods take the simulator's IPs.
            "--controllers=*,-nodeipam",
            "--profiling=false",
        )
        scheduler = self.root / "scheduler.kubeconfig"
        self._run(
            "kube-scheduler",
            f"--kubeconfig={scheduler}",
            f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            "--leader-elect=false",
            "--profiling=false",
        )
        self._wait_ready(f"https://127.0.0.1:{manager_port}/healthz", "kube-controller-manager")
        self._wait_ready(f"https://127.0.0.1:{scheduler_port}/healthz", "kube-scheduler")

    def stop(self) -> None:
        """Stop in reverse order: the API server must go before etcd, or it hangs in shutdown."""
        while self._processes:
            _, process = self._processes.pop()
            terminate(process, timeout=15)

    def kubeconfig(self, path: Path, namespace: str) -> Path:
        """An admin kubeconfig whose context defaults to ``namespace`` (kubectl, helm, qatflow)."""
        return self.write_kubeconfig(
            path,
            KeyPair(self.root / "pki" / "admin.crt", self.root / "pki" / "admin.key"),
            namespace=namespace,
        )

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.root / "logs" / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def write_kubeconfig(self, path: Path, pair: KeyPair, *, namespace: str) -> Path:
        """A kubeconfig for the API server with the client certificate ``pair``."""
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [
                {
                    "name": "user",
                    "user": {
                        "client-certificate": str(pair.cert),
                        "client-key": str(pair.key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "test",
                    "context": {"cluster": "test", "user": "user", "namespace": namespace},
                }
            ],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- internals --------------------------------------------------------------------------

    def _run(self, name: str, *flags: str) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [str(self.assets / name), *flags],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        self._processes.append((name, process))

    def _wait_ready(self, url: str, name: str) -> None:
        context = ssl.create_default_context(cafile=str(self.ca))
        if name == "kube-apiserver":
            pki = self.root / "pki"
            context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        else:  # serves a self-signed certificate of its own on /healthz
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + START_TIMEOUT
        process = dict(self._processes)[name]
        while True:
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {process.returncode}:\n{self.log_tail(name)}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, context=context, timeout=5) as response,
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{name} not ready after {START_TIMEOUT:.0f} s:\n{self.log_tail(name)}"
                )
            time.sleep(0.2)


def advertise_address() -> str:
    """A non-loopback IPv4 address of this machine (the route to the outside's source)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
        address = probe.getsockname()[0]
        if not address.startswith("127."):
            return str(address)
    for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        address = str(info[4][0])
        if not address.startswith("127."):
            return address
    raise ControlPlaneError("no non-loopback IPv4 address to advertise the API server on")


_PR_SET_PDEATHSIG = 1


def terminate(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds; reaps it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def die_with_parent() -> None:
    """A control plane must not outlive a killed test run on a shared machine."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
