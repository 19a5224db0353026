"""Render the chart with the real helm binary that ``helm/install-tools.sh`` puts in .tools/."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "qat"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
TOOLS = REPO / ".tools"
HELM = TOOLS / "bin" / "helm"
TOOL_VENV_BIN = TOOLS / "venv" / "bin"
RELEASE = "qatchart"
# helm create naming: a release name that contains the chart name is used as is.
FULLNAME = "qatchart"
NAMESPACE = "qatflow"


@dataclass
class Rendered:
    """The objects `helm template` produced for one values file, and that file's values."""

    values_file: Path
    values: dict[str, Any]
    manifest: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def job(self) -> dict[str, Any] | None:
        jobs = self.of_kind("Job")
        assert len(jobs) <= 1
        return jobs[0] if jobs else None

    def service(self) -> dict[str, Any]:
        """The inference Service (multi-node training adds a headless Service, a hook)."""
        (service,) = [s for s in self.of_kind("Service") if _hook(s) is None]
        return service

    def deployment(self) -> dict[str, Any]:
        (deployment,) = self.of_kind("Deployment")
        return deployment

    def test_pod(self) -> dict[str, Any] | None:
        return next((p for p in self.of_kind("Pod") if _hook(p) == "test"), None)


def _hook(obj: dict[str, Any]) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get("helm.sh/hook")


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.exists():
        pytest.skip(f"{HELM} is missing: run helm/install-tools.sh first")
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


def install_notes(*args: str) -> str:
    """The NOTES a ``helm install`` prints (client-side dry run) with these extra arguments."""
    out = run_helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args
    ).stdout
    return out[out.index("NOTES:") :]


def chart_values(values_file: Path | None) -> dict[str, Any]:
    """The chart defaults merged with one values file, as helm merges them (maps deep)."""

    def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
        return merged

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    if values_file is None:
        return defaults
    return merge(defaults, yaml.safe_load(values_file.read_text()) or {})


def render(values_file: Path | None, *extra: str) -> Rendered:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values_file is not None:
        args += ["--values", str(values_file)]
    manifest = run_helm(*args, *extra).stdout
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    return Rendered(
        values_file or CHART / "values.yaml", chart_values(values_file), manifest, objects
    )


_cache: dict[tuple[str, ...], Rendered] = {}


@pytest.fixture(params=CI_VALUES, ids=[path.stem for path in CI_VALUES])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """The chart rendered with each values file of helm/qat/ci (once per session)."""
    key = (str(request.param),)
    if key not in _cache:
        _cache[key] = render(request.param)
    return _cache[key]


@pytest.fixture
def render_chart() -> Callable[..., Rendered]:
    return render
