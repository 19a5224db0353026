"""A real Kubernetes node for the control plane of control_plane.py: the real ``kubelet`` (from
``$KUBEBUILDER_ASSETS``) on Debian's containerd, runc and CNI plugins.

containerd runs with its own root, state, runc root, sockets and network namespaces under the
test's directory, so it never meets the containerd of a Docker engine on the same machine; when
the node stops, what it leaves outside that directory (shims, the bridge, cgroups) goes too.
What this machine needs beyond a plain install (``../shared/k8s/README.md``, "Nodes"):

- **oom_score_adj.** Root here lacks CAP_SYS_RESOURCE, so runc cannot set the negative
  ``oom_score_adj`` the kubelet asks for sandboxes (-998) and Guaranteed pods (-997).
  containerd's ``restrict_oom_score_adj`` (meant for rootless runs) raises it to containerd's
  own score, 0, as the README's runc wrapper did, without a wrapper.
- **cgroup v1.** ``failCgroupV1: false`` and the ``cgroupfs`` driver; no swap check, no cluster
  DNS and no host resolv.conf for pods.
- **No registry.** Images come from the local Docker engine (``docker save | ctr images
  import``), and the sandbox's ``pause`` image is built here from ``pause.c``.

There is no kube-proxy and no DNS: Service names and ClusterIPs do not route. Pods are reached
through ``kubectl port-forward`` (API server -> kubelet -> containerd) or their pod IP on the
node's bridge.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qatflow.local import free_port

from ..control_plane import (
    ASSETS_VARIABLE,
    ControlPlane,
    advertise_address,
    die_with_parent,
    terminate,
)

NODE_NAME = "e2e-node"
NAMESPACE = "k8s.io"  # containerd's namespace of the Kubernetes CRI
PAUSE_IMAGE = "docker.io/library/qatflow-e2e-pause:local"
PAUSE_SOURCE = Path(__file__).with_name("pause.c")
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback")
BRIDGE = "qatflow-e2e0"
POD_SUBNET = "10.244.0.0/24"
READY_TIMEOUT = 120.0
# Debian packages whose programs the node runs, by program.
PACKAGES = {
    "containerd": "containerd",
    "ctr": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
    "gcc": "gcc",
}

# Everything under the node's root; the CRI's sandbox image is the one built here.
# restrict_oom_score_adj: see the module's docstring.
CONTAINERD_CONFIG = """\
version = 2
root = "{root}/containerd"
state = "{root}/containerd-state"
# Snapshotters this machine lacks would only log errors.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  Root = "{root}/runc"
  SystemdCgroup = false
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni_bin}"
  conf_dir = "{root}/cni/net.d"
  max_conf_num = 1
"""


class NodeError(RuntimeError):
    """The node did not come up; the message carries the end of the log that says why."""


def missing_node_programs() -> str | None:
    """Why a real node cannot run here, or None when every program is in place."""
    kubelet = Path(os.environ.get(ASSETS_VARIABLE, "")) / "kubelet"
    if not os.access(kubelet, os.X_OK):
        return f"no kubelet in {ASSETS_VARIABLE} ({kubelet}): `make k8s` unpacks it"
    absent = sorted({package for program, package in PACKAGES.items() if not shutil.which(program)})
    if not all((CNI_BIN / plugin).exists() for plugin in CNI_PLUGINS):
        absent.append("containernetworking-plugins")
    if absent:
        return f"not installed: {', '.join(absent)} (apt-get install {' '.join(absent)})"
    if os.geteuid() != 0:
        return "a kubelet and containerd run as root only"
    return None


@dataclass
class RealNode:
    """containerd and the kubelet in ``root``, registered as ``NODE_NAME`` with the control
    plane; ``stop`` removes every container, mount, process and link they made."""

    root: Path
    control_plane: ControlPlane
    name: str = NODE_NAME
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def address(self) -> str:
        return advertise_address()

    def start(self, api: Any) -> None:
        """Start containerd, import the pause image, start the kubelet and wait until the
        Node is Ready (``api``: a CoreV1Api of the admin)."""
        for directory in ("logs", "cni/net.d", "pod-logs"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        self._start_containerd()
        self._import(self._pause_image())
        self._start_kubelet()
        self._wait_ready(api)

    def import_images(self, images: Sequence[str]) -> None:
        """``docker save IMAGES | ctr images import -`` into the CRI's namespace."""
        saved = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert saved.stdout is not None
        try:
            imported = subprocess.run(
                self._ctr("images", "import", "-"),
                stdin=saved.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            saved.stdout.close()
        if saved.wait() != 0 or imported.returncode != 0:
            raise NodeError(
                f"importing {', '.join(images)} failed (docker save exited {saved.returncode}, "
                f"ctr {imported.returncode}):\n{imported.stderr}"
            )

    def running_containers(self) -> list[str]:
        """IDs of the containers (pod sandboxes included) that run on the node."""
        listed = subprocess.run(
            self._ctr("tasks", "list"), capture_output=True, text=True, check=True
        ).stdout.splitlines()[1:]  # TASK PID STATUS
        return [row.split()[0] for row in listed if row.split()[-1] == "RUNNING"]

    def stop(self, api: Any) -> None:
        """Delete the node's pods through the kubelet (which stops their containers and tears
        down their networks), then stop both programs and remove what is left behind, and the
        images."""
        with contextlib.suppress(Exception):
            self._drain(api)
        self._terminate("kubelet")
        with contextlib.suppress(Exception):
            self._remove_containers()
        self._terminate("containerd")
        self._kill_shims()
        _unmount(self.root)
        # The imported images, about 9 GB with their unpacked snapshots: pytest keeps the
        # directories of the last three runs, the logs are enough of them.
        shutil.rmtree(self.root / "containerd", ignore_errors=True)
        if shutil.which("ip"):
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        _remove_empty_cgroups()

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.root / "logs" / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- containerd ---------------------------------------------------------------------------

    def _start_containerd(self) -> None:
        (self.root / "containerd.toml").write_text(
            CONTAINERD_CONFIG.format(
                root=self.root,
                socket=self.socket,
                pause=PAUSE_IMAGE,
                stream_port=free_port(),
                cni_bin=CNI_BIN,
            )
        )
        (self.root / "cni" / "net.d" / "10-qatflow-e2e.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "qatflow-e2e",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            # The bridge holds the gateway address: the kubelet's probes reach
                            # pods from the host through it. No masquerading: pods need no way out.
                            "isGateway": True,
                            "ipMasq": False,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET}]],
                                "dataDir": str(self.root / "cni" / "ipam"),
                            },
                        }
                    ],
                }
            )
        )
        self._run("containerd", ["containerd", "--config", str(self.root / "containerd.toml")])
        self._wait("containerd", self._containerd_answers, 60)

    def _containerd_answers(self) -> bool:
        result = subprocess.run(self._ctr("version"), capture_output=True, check=False)
        return result.returncode == 0

    def _ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args]

    def _import(self, path: Path) -> None:
        with path.open("rb") as tarball:
            subprocess.run(
                self._ctr("images", "import", "-"), stdin=tarball, check=True, capture_output=True
            )

    def _pause_image(self) -> Path:
        """A one-layer image of ``pause.c`` compiled static, as ``docker save`` writes one."""
        binary = self.root / "pause"
        subprocess.run(
            ["gcc", "-static", "-Os", "-s", "-o", str(binary), str(PAUSE_SOURCE)],
            check=True,
            capture_output=True,
        )
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            info = tar.gettarinfo(str(binary), arcname="pause")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with binary.open("rb") as file:
                tar.addfile(info, file)
        layer_bytes = layer.getvalue()
        diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps(
            [
                {
                    "Config": config_name,
                    "RepoTags": [PAUSE_IMAGE.removeprefix("docker.io/library/")],
                    "Layers": ["layer.tar"],
                }
            ]
        ).encode()
        path = self.root / "pause.tar"
        with tarfile.open(path, mode="w") as image:
            for name, data in (
                ("layer.tar", layer_bytes),
                (config_name, config),
                ("manifest.json", manifest),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                image.addfile(info, io.BytesIO(data))
        return path

    # -- kubelet ------------------------------------------------------------------------------

    def _start_kubelet(self) -> None:
        authority = self.control_plane.authority
        assert authority is not None, "the control plane has not started"
        address = self.address
        client = authority.issue(
            f"node-{self.name}", f"system:node:{self.name}", organization="system:nodes"
        )
        serving = authority.issue(
            f"node-{self.name}-serving",
            self.name,
            hosts=(address, "127.0.0.1", self.name),
            server=True,
        )
        kubeconfig = self.control_plane.write_kubeconfig(
            self.root / "kubelet.kubeconfig", client, namespace="default"
        )
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": address,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            # Only the API server (a client certificate of the test CA) talks to the kubelet.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.control_plane.ca)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "clusterDNS": [],
            "resolvConf": "",
            "podLogsDir": str(self.root / "pod-logs"),
            # Without CAP_SYS_RESOURCE the kubelet cannot lower its own score either.
            "oomScoreAdj": 0,
            # A shared disk's usage is not this node's: evict only when it is nearly full.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "2%",
                "imagefs.available": "2%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
        }
        (self.root / "kubelet.yaml").write_text(yaml.safe_dump(config))
        self._run(
            "kubelet",
            [
                str(Path(os.environ[ASSETS_VARIABLE]) / "kubelet"),
                f"--config={self.root / 'kubelet.yaml'}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.root / 'kubelet'}",
                f"--hostname-override={self.name}",
                f"--node-ip={address}",
                "--v=1",
            ],
        )

    def _wait_ready(self, api: Any) -> None:
        def ready() -> bool:
            from kubernetes.client.exceptions import ApiException

            try:
                node = api.read_node(self.name)
            except ApiException:
                return False
            conditions = {c.type: c.status for c in node.status.conditions or ()}
            return conditions.get("Ready") == "True"

        self._wait("kubelet", ready, READY_TIMEOUT)

    # -- processes and what they leave --------------------------------------------------------

    def _run(self, name: str, command: list[str]) -> None:
        with open(self.root / "logs" / f"{name}.log", "wb") as log:
            self._processes[name] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def _wait(self, name: str, condition: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self._processes[name]
        while not condition():
            if process.poll() is not None:
                raise NodeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise NodeError(f"{name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}")
            time.sleep(0.5)

    def _terminate(self, name: str) -> None:
        process = self._processes.pop(name, None)
        if process is not None:
            terminate(process, timeout=20)

    def _drain(self, api: Any, timeout: float = 90.0) -> None:
        """Delete every pod on the node and wait until the kubelet has confirmed each."""
        selector = f"spec.nodeName={self.name}"
        for pod in api.list_pod_for_all_namespaces(field_selector=selector).items:
            api.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        deadline = time.monotonic() + timeout
        while api.list_pod_for_all_namespaces(field_selector=selector).items:
            if time.monotonic() > deadline:
                return
            time.sleep(1)

    def _remove_containers(self) -> None:
        """Containers the kubelet did not stop (it was killed, or a pod would not go)."""
        tasks = subprocess.run(
            self._ctr("tasks", "list", "--quiet"), capture_output=True, text=True, check=True
        ).stdout.split()
        for task in tasks:
            subprocess.run(self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task))
        for task in tasks:
            subprocess.run(self._ctr("tasks", "delete", "--force", task), capture_output=True)
        containers = subprocess.run(
            self._ctr("containers", "list", "--quiet"), capture_output=True, text=True, check=True
        ).stdout.split()
        if containers:
            subprocess.run(self._ctr("containers", "delete", *containers), capture_output=True)

    def _kill_shims(self) -> None:
        """Shims outlive containerd by design; these are the ones this node's containerd
        started."""
        for shim in _shims():
            if shim.address == self.socket:
                os.kill(shim.pid, signal.SIGKILL)


def remove_abandoned_nodes() -> list[Path]:
    """Remove what nodes of earlier runs left when their run was killed (SIGKILL: no teardown).
    Their containerd and kubelet died with the run (PR_SET_PDEATHSIG), but the shims and the
    containers of their pods live on, holding their pod IPs on the shared bridge. Each shim
    names its node's socket; a node whose containerd no longer answers is abandoned: its
    containers are deleted with runc, its shims killed, its mounts, images, the bridge and the
    empty pod cgroups removed. Returns the roots of the nodes removed."""
    abandoned: dict[Path, list[_Shim]] = {}
    for shim in _shims():
        root = shim.address.parent
        if shim.address.name == "containerd.sock" and (root / "runc").is_dir():
            abandoned.setdefault(root, []).append(shim)
    for root in list(abandoned):
        answers = subprocess.run(
            ["ctr", "--address", str(root / "containerd.sock"), "version"],
            capture_output=True,
            check=False,
        )
        if answers.returncode == 0:  # a live node, maybe another run's
            del abandoned[root]
    for root, shims in abandoned.items():
        # Every container of the node (a shim serves a whole pod), then the shims.
        for state in (root / "runc").iterdir():
            listed = subprocess.run(
                ["runc", "--root", str(state), "list", "--quiet"],
                capture_output=True,
                text=True,
                check=False,
            )
            for container in listed.stdout.split():
                subprocess.run(
                    ["runc", "--root", str(state), "delete", "--force", container],
                    capture_output=True,
                    check=False,
                )
        for shim in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim.pid, signal.SIGKILL)
        _unmount(root)
        shutil.rmtree(root / "containerd", ignore_errors=True)
    if abandoned:
        if shutil.which("ip"):
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        _remove_empty_cgroups()
    return list(abandoned)


@dataclass(frozen=True)
class _Shim:
    pid: int
    address: Path


def _shims() -> list[_Shim]:
    """The runc v2 shims running on this machine, with the socket of the containerd that
    started each (``containerd-shim-runc-v2 -namespace NS -id ID -address SOCKET``)."""
    shims = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if not command[0].endswith("containerd-shim-runc-v2"):
                continue
            flags = dict(itertools.pairwise(command))
            if "-address" in flags:
                shims.append(_Shim(int(entry.name), Path(flags["-address"])))
    return shims


def _unmount(root: Path) -> None:
    """Mounts under ``root`` (image snapshots, pod volumes, network namespaces), deepest
    first, so that the directory can be removed."""
    mounts = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == str(root) or point.startswith(f"{root}/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def _remove_empty_cgroups() -> None:
    """The kubelet's ``kubepods`` hierarchy (cgroupfs driver, cgroup v1), if no pod is left in
    it: rmdir removes only empty cgroups."""
    for hierarchy in Path("/sys/fs/cgroup").glob("*/kubepods"):
        for directory in sorted(
            hierarchy.glob("**/"), key=lambda path: len(path.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
