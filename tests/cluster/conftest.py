"""Fixtures of the ``qatflow status`` tests: a Kubernetes API fixture server and its kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .kube_api_fixture import KubernetesApiFixture

NAMESPACE = "qa-demo"


@pytest.fixture
def kube_api() -> Iterator[KubernetesApiFixture]:
    server = KubernetesApiFixture()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(kube_api: KubernetesApiFixture, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig.yaml", NAMESPACE)
