"""The config.json the Helm chart mounts equals the one ``qatflow ovms-config`` generates."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from qatflow.ovms.config import OVMS_IMAGE, model_server_config

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "qat"
HELM = REPO / ".tools" / "bin" / "helm"


def rendered_config(*values: str) -> dict:
    if not HELM.exists():
        pytest.skip(f"{HELM} is missing: run helm/install-tools.sh first")
    args = [str(HELM), "template", "qatchart", str(CHART), "--set", "inference.backend=ovms"]
    for value in values:
        args += ["--set", value]
    args += ["--show-only", "templates/ovms-configmap.yaml"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(yaml.safe_load(result.stdout)["data"]["config.json"])


def test_chart_defaults_match_the_generator():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    expected = model_server_config(
        values["model"]["name"],
        inputs=values["inference"]["ovms"]["inputs"],
        models_mount=values["persistence"]["mountPath"],
        performance_hint=values["inference"]["ovms"]["performanceHint"],
    )
    assert rendered_config() == expected
    image = values["inference"]["ovms"]["image"]
    assert f"{image['repository']}:{image['tag']}" == OVMS_IMAGE


def test_chart_pinned_version_throughput_and_nireq_match_the_generator():
    expected = model_server_config(
        "squad-qa",
        models_mount="/data/models",
        performance_hint="THROUGHPUT",
        version=3,
        nireq=4,
    )
    assert (
        rendered_config(
            "model.name=squad-qa",
            "model.version=3",
            "persistence.mountPath=/data/models",
            "inference.ovms.performanceHint=THROUGHPUT",
            "inference.ovms.nireq=4",
        )
        == expected
    )
