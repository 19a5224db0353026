"""The chart against its linters and the Kubernetes schemas: helm lint, kubernetes-validate,
checkov, values.schema.json and the values documentation."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from qatflow.core.settings import Settings
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

from .conftest import CHART, CI_VALUES, HELM, RELEASE, TOOL_VENV_BIN, Rendered, run_helm

pytestmark = pytest.mark.chart

# The chart's kubeVersion floor and the Kubernetes release of the kubectl we ship.
KUBERNETES_VERSIONS = ["1.29.0", "1.32.0", "1.35.0"]

# checkov findings skipped for every object, each for a reason:
CHECKOV_SKIPS = {
    # "Image should use digest": tags are pinned per release, and locally built images loaded
    # with `kind load` / `k3s ctr images import` have no registry digest. A digest can still
    # be pinned through the tag value ("0.1.0@sha256:...").
    "CKV_K8S_43",
    # "Image Pull Policy should be Always": IfNotPresent is what works with images loaded into
    # the node without a registry, and pinned tags never change; image.pullPolicy sets Always.
    "CKV_K8S_15",
}
# Findings skipped on one object carry a `checkov.io/skipN` annotation with their reason
# (the run-once helm test pod has no liveness or readiness to probe).


def tool(name: str) -> Path:
    if not HELM.exists():
        pytest.skip(f"{HELM} is missing: run helm/install-tools.sh first")
    path = TOOL_VENV_BIN / name
    assert path.exists(), f"{path} is missing: run helm/install-tools.sh"
    return path


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_helm_lint_strict(values_file: Path) -> None:
    result = run_helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert "0 chart(s) failed" in result.stdout


def test_ci_values_cover_the_use_cases() -> None:
    names = {path.stem for path in CI_VALUES}
    assert {
        "optimum-values",
        "onnxruntime-values",
        "ovms-values",
        "inference-only-values",
        "existing-claim-values",
        "hostpath-values",
        "hpa-values",
        "multinode-values",
        "classification-values",
        "distillation-values",
        "gpu-values",
    } <= names


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_against_kubernetes_schemas(
    rendered: Rendered, version: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(rendered.manifest)
    result = subprocess.run(
        [str(tool("kubernetes-validate")), "--strict", "-k", version, str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource (\S+)", result.stdout)
    assert len(passed) == len(rendered.objects), result.stdout


def test_checkov_is_clean(tmp_path: Path) -> None:
    from .conftest import render

    for values_file in CI_VALUES:
        (tmp_path / values_file.name).write_text(render(values_file).manifest)
    result = subprocess.run(
        [
            str(tool("checkov")),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-check",
            ",".join(sorted(CHECKOV_SKIPS)),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [
        f"{check['check_id']} {check['resource']}"
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    assert result.returncode == 0


# -- values.schema.json ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("training.settings.learning_rat=0.1", "additional properties 'learning_rat' not allowed"),
        ("inference.replicas=2", "additional properties 'replicas' not allowed"),
        ("training.settings.max_seq_length=16", "max_seq_length"),
        ("model.name=Bad_Name", "model/name"),
        ("persistence.hostPath.type=Socket", "hostPath/type"),
    ],
)
def test_schema_rejects_bad_values(assignment: str, message: str) -> None:
    result = run_helm("template", RELEASE, str(CHART), "--set", assignment, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_missing_volume_fails_clearly() -> None:
    result = run_helm(
        "template", RELEASE, str(CHART), "--set", "persistence.enabled=false", check=False
    )
    assert result.returncode != 0
    assert "training and inference share the model volume" in result.stderr


def _leaves(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the documented values: maps are descended unless they are free-form
    (empty by default or Kubernetes objects passed through as they are)."""
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict) and value and not _free_form(path):
            paths |= _leaves(value, path + ".")
    return paths


def _free_form(path: str) -> bool:
    return path.rsplit(".", 1)[-1] in {
        "podSecurityContext",
        "containerSecurityContext",
        "resources",
        "ort_provider_options",
    }


def test_every_value_is_documented_where_it_is_defined() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE))
    values = yaml.safe_load(text)
    leaves = _leaves(values)
    # Sections (maps with documented children) need no line of their own.
    sections = {p for p in leaves if any(q.startswith(p + ".") for q in leaves)}
    assert leaves - sections - documented == set(), "values without a ## @param line"
    assert documented - leaves == set(), "## @param lines naming no value"


def test_schema_is_strict_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}")

    walk(schema, "values")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema["properties"]) == set(values)


@pytest.mark.parametrize(
    ("section", "settings"), [("training", TrainingSettings), ("inference", ServeSettings)]
)
def test_schema_choices_are_the_settings_choices(section: str, settings: type[Settings]) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    properties = schema["properties"][section]["properties"]["settings"]["properties"]
    choices = {key: node["enum"] for key, node in properties.items() if "enum" in node}
    assert choices, f"{section}.settings has no choice lists to check"
    for key, listed in choices.items():
        assert listed == list(get_args(settings.model_fields[key].annotation)), key


def _json_types(node: dict[str, Any]) -> set[str]:
    if "anyOf" in node:
        return {t for option in node["anyOf"] for t in _json_types(option)}
    return set(node["type"]) if isinstance(node["type"], list) else {node["type"]}


def test_schema_types_every_training_setting_but_holds_no_defaults() -> None:
    """training.settings is empty by default, so its keys and their types are the schema's
    alone: every TrainingSettings field the chart does not set from other values, typed as the
    class types it, and no default that could drift from the class's."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    settings = schema["properties"]["training"]["properties"]["settings"]
    assert settings["additionalProperties"] is False and not settings.get("required")
    from_chart = {"output_dir", "model_name"}
    assert set(settings["properties"]) == set(TrainingSettings.fields()) - from_chart
    own = TrainingSettings.model_json_schema()["properties"]
    for key, node in settings["properties"].items():
        assert _json_types(node) == _json_types(own[key]), key
    assert '"default"' not in json.dumps(settings)


def values_table() -> str:
    """The values table of docs/kubernetes.md, generated from the ``## @param`` lines: name,
    description, and the default as JSON (a documented map points at its rows, a free-form one
    at values.yaml)."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    params = re.findall(r"^\s*## @param (\S+) (.+)$", text, flags=re.MULTILINE)
    rows = ["| Parameter | Description | Default |", "|---|---|---|"]
    for name, description in params:
        value = values
        for key in name.split("."):
            value = value[key]
        if isinstance(value, dict) and value:
            documented = any(other.startswith(name + ".") for other, _ in params)
            default = "(see below)" if documented else "(see values.yaml)"
        else:
            default = f"`{json.dumps(value, separators=(',', ':'))}`"
        rows.append(f"| `{name}` | {description} | {default} |")
    return "\n".join(rows) + "\n"


def test_docs_values_table_is_the_param_lines() -> None:
    docs = (CHART.parents[1] / "docs" / "kubernetes.md").read_text()
    start = docs.index("| Parameter | Description | Default |\n")
    end = docs.find("\n\n", start)
    table = docs[start : len(docs) if end == -1 else end].rstrip("\n") + "\n"
    assert table == values_table(), (
        "the values table in docs/kubernetes.md is out of date: paste the output of `python -c "
        "'from tests.chart.test_chart_validation import values_table; print(values_table())'`"
    )
