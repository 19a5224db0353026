"""The cluster tier: a real Kubernetes control plane with simulated nodes, shared by a session.

``cluster`` starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
``$KUBEBUILDER_ASSETS`` (control_plane.py) and registers simulated nodes (simulated_node.py:
only the nodes' containers, logs and volumes are simulated). One per test process: under
``pytest -n 2`` the scheduler of tests/conftest.py sends every test of this directory to one
worker, so one control plane serves them; with another ``--dist`` each worker that runs some
starts its own, on its own ports and directories. ``namespace`` gives each test a fresh
namespace, a kubeconfig defaulting to it, and the real helm and kubectl.

Without the binaries the tier is skipped with the reason, except under ``CI=true``, where that
is a failure. The full tier (e2e/, marker ``e2e``) replaces ``cluster`` with one that has a
real node.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .control_plane import ControlPlane, missing_assets
from .e2e.node import RealNode
from .simulated_node import Chooser, SimulatedNodes

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "qat"
TOOLS = REPO / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent


def api_client(kubeconfig: Path) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@dataclass
class Cluster:
    control_plane: ControlPlane
    # Simulated nodes here; one real node in the full tier (e2e/conftest.py).
    nodes: SimulatedNodes | RealNode
    # A kubernetes ApiClient with the admin's credentials.
    client: Any


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = missing_assets() or (
        None if (TOOLS / "helm").exists() else f"{TOOLS / 'helm'} is missing: run `make tools`"
    )
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the cluster tier cannot run in CI: {reason}", pytrace=False)
        pytest.skip(f"no Kubernetes control plane: {reason}")
    control_plane = ControlPlane(tmp_path_factory.mktemp("kubernetes"))
    try:
        control_plane.start()
        assert control_plane.kubelet_pair is not None
        nodes = SimulatedNodes(
            api_client(control_plane.admin_kubeconfig), control_plane.kubelet_pair
        )
        nodes.start()
    except BaseException:
        control_plane.stop()
        raise
    yield Cluster(control_plane, nodes, api_client(control_plane.admin_kubeconfig))
    nodes.stop()
    control_plane.stop()


@dataclass
class Namespace:
    """One test's namespace: helm, kubectl and the API, all defaulting to it."""

    name: str
    cluster: Cluster
    kubeconfig: Path
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": os.pathsep.join([str(TOOLS), str(VENV_BIN), os.environ.get("PATH", "")]),
            "KUBECONFIG": str(self.kubeconfig),
            # helm and kubectl keep caches and repositories under HOME: keep them in the test's.
            "HOME": str(self.home),
        }

    def run(
        self, *command: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        return result

    def helm(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(str(TOOLS / "helm"), *args, timeout=timeout, check=check)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(TOOLS / "kubectl"), *args, check=check)

    def shell(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A documented command line, run by bash as a user would paste it."""
        return self.run("bash", "-euo", "pipefail", "-c", command, timeout=timeout, check=False)

    def script(self, component: str | None, chooser: Chooser) -> None:
        """What the containers of this namespace's pods labelled ``component`` do."""
        assert isinstance(self.cluster.nodes, SimulatedNodes), "a real node runs the images"
        self.cluster.nodes.script(self.name, component, chooser)

    def create_claim(self, name: str, access_mode: str = "ReadWriteOnce") -> None:
        """A PersistentVolumeClaim of the default class, as a user would have made it."""
        from kubernetes import client

        client.CoreV1Api(self.cluster.client).create_namespaced_persistent_volume_claim(
            self.name,
            {
                "metadata": {"name": name},
                "spec": {
                    "accessModes": [access_mode],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )

    def elsewhere(self, name: str) -> Namespace:
        """The same tools defaulting to namespace ``name`` (one that exists, e.g. default)."""
        kubeconfig = self.cluster.control_plane.kubeconfig(
            self.kubeconfig.with_name(f"kubeconfig-{name}"), name
        )
        return Namespace(name, self.cluster, kubeconfig, self.home)

    def objects(self, kind: str, selector: str = "") -> list[dict[str, Any]]:
        """``kubectl get KIND -o json`` items of this namespace."""
        import json

        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        return list(json.loads(self.kubectl(*args).stdout)["items"])


_counter = itertools.count()


@pytest.fixture
def namespace(
    cluster: Cluster, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Namespace]:
    with new_namespace(cluster, request.node.name, tmp_path) as created:
        yield created


@contextlib.contextmanager
def new_namespace(cluster: Cluster, title: str, directory: Path) -> Iterator[Namespace]:
    """A fresh namespace named after ``title`` (a test's or a module's), with its kubeconfig and
    HOME in ``directory``; deleted afterwards."""
    from kubernetes import client

    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{next(_counter)}"
    core = client.CoreV1Api(cluster.client)
    core.create_namespace({"metadata": {"name": name}})
    home = directory / "home"
    home.mkdir()
    kubeconfig = cluster.control_plane.kubeconfig(directory / "kubeconfig", name)
    wait_for(
        lambda: any(
            account.metadata.name == "default"
            for account in core.list_namespaced_service_account(name).items
        ),
        30,
        f"the default ServiceAccount of {name}",
    )
    try:
        yield Namespace(name, cluster, kubeconfig, home)
    finally:
        # Frees the nodes' capacity for the next tests; the controllers finish it.
        core.delete_namespace(name)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}", pytrace=False)
        time.sleep(0.2)
