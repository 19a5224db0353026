"""The full cluster tier (marker ``e2e``, ``make e2e-cluster``): the chart on a cluster where
nothing is simulated.

``cluster`` here replaces the fast tier's: the same control plane (control_plane.py) with one
real node (node.py: the real kubelet on containerd, runc and a CNI bridge) instead of the
simulated ones, and the qatflow images of ``make local-images`` imported into its containerd
from the local Docker engine, so that pods run them with ``imagePullPolicy: Never``. The fast
tier's ``Namespace`` (helm, kubectl and the API defaulting to a fresh namespace) drives it.

Without the binaries, the packages, the engine or the images the tier is skipped with the
reason; under ``CI=true`` a skipped end-to-end test is a failure (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker.conftest import questions  # noqa: F401  (a fixture of the tests here too)
from tests.docker.engine import docker, engine_version, image

from ..conftest import TOOLS, Cluster, api_client
from ..control_plane import ControlPlane, missing_assets
from .node import RealNode, missing_node_programs, remove_abandoned_nodes

# What the chart runs: the training hook and both HTTP services (the helm test pod's client
# image would find no Service to ask: there is no kube-proxy and no DNS here).
IMAGES = ("training", "optimum", "onnxruntime")


def missing_prerequisite() -> str | None:
    """Why the full tier cannot run here, or None."""
    reason = missing_assets() or missing_node_programs()
    if reason:
        return reason
    if not (TOOLS / "helm").exists():
        return f"{TOOLS / 'helm'} is missing: run `make tools`"
    if engine_version() is None:
        return "no Docker engine answers (the images come from it): `make engine` starts one"
    absent = [
        image(name)
        for name in IMAGES
        if docker("image", "inspect", image(name), check=False).returncode != 0
    ]
    if absent:
        return f"not built: {', '.join(absent)}; `make local-images` builds them"
    return None


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from kubernetes import client

    reason = missing_prerequisite()
    if reason:
        pytest.skip(f"no real Kubernetes node: {reason}")
    # A run killed outright left its pods running on the shared bridge: they would answer
    # for this run's pod addresses.
    remove_abandoned_nodes()
    root = tmp_path_factory.mktemp("kubernetes")
    control_plane = ControlPlane(root / "control-plane")
    node = RealNode(root / "node", control_plane)
    api = None
    try:
        control_plane.start()
        api = client.CoreV1Api(api_client(control_plane.admin_kubeconfig))
        node.start(api)
        node.import_images([image(name) for name in IMAGES])
        yield Cluster(control_plane, node, api_client(control_plane.admin_kubeconfig))
    finally:
        node.stop(api)
        control_plane.stop()
