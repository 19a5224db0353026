"""Secure defaults that no other test pins: no remote code, request limits on, no secrets.

The chart's pod hardening (non-root, read-only root filesystem, no privilege escalation,
``drop: [ALL]``), the read-only model mount of inference pods and the Dockerfiles' final
non-root ``USER`` are proven by tests/chart/test_chart_objects.py and
tests/docker/test_dockerfiles.py (listed in docs/reliability.md).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from qatflow.core.settings import SettingsError
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

from .credentials import SECRET_KEY, findings, looks_random

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services" / "qatflow"
CONFIGURATION = [
    REPO / "helm" / "qat" / "values.yaml",
    *sorted((REPO / "helm" / "qat" / "ci").glob("*.yaml")),
    REPO / "docker-compose.yaml",
    *sorted((REPO / "services" / "qatflow").rglob("*.yaml")),
]


def _calls_with_keyword(keyword: str) -> list[tuple[str, int, ast.expr]]:
    found = []
    for path in sorted(SERVICES.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for argument in node.keywords:
                    if argument.arg == keyword:
                        found.append((str(path.relative_to(REPO)), node.lineno, argument.value))
    return found


def test_remote_code_is_never_trusted() -> None:
    """A model folder's own Python would run inside the service: no call may allow it."""
    for where, line, value in _calls_with_keyword("trust_remote_code"):
        assert isinstance(value, ast.Constant) and value.value is False, f"{where}:{line}"
    for settings in (ServeSettings, TrainingSettings):
        for name, field in settings.model_fields.items():
            if "remote_code" in name:
                assert field.default is False, f"{settings.__name__}.{name}"
    for path in SERVICES.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "trust_remote_code=True" not in text.replace(" ", ""), path
    for path in [*CONFIGURATION, *sorted((REPO / "dockerfiles").glob("*"))]:
        assert "trust_remote_code: true" not in path.read_text().lower(), path


def test_request_size_and_concurrency_limits_are_on_by_default() -> None:
    defaults = ServeSettings.load(environ={})
    assert defaults.max_body_bytes == 1 << 20
    assert defaults.max_batch_size == 32
    assert defaults.max_concurrency == 4
    assert 0 < defaults.shutdown_timeout <= 60
    # A limit can be raised, never switched off.
    for key, value in [("max_body_bytes", 0), ("max_batch_size", 0), ("max_concurrency", 0)]:
        with pytest.raises(SettingsError, match=key):
            ServeSettings.load(environ={f"QATFLOW_SERVE_{key.upper()}": str(value)})


def _leaves(data: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, f"{path}.{key}")]
    if isinstance(data, list):
        return [leaf for i, value in enumerate(data) for leaf in _leaves(value, f"{path}[{i}]")]
    return [(path, data)]


@pytest.mark.parametrize("path", CONFIGURATION, ids=lambda p: str(p.relative_to(REPO)))
def test_configuration_files_hold_no_secret_looking_values(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert findings(text) == []
    for document in yaml.safe_load_all(text):
        for where, value in _leaves(document):
            key = where.rsplit(".", 1)[-1]
            if SECRET_KEY.search(key) and isinstance(value, str):
                assert value == "", f"{path.name}{where} holds a value"
            if isinstance(value, str):
                assert not looks_random(value), f"{path.name}{where}: {value[:12]}..."


def test_the_scanner_finds_what_it_looks_for() -> None:
    planted = [
        "-----BEGIN RSA PRIVATE KEY-----",
        "AKIAIOSFODNN7EXAMPLE",
        "hf_" + "aB3" * 12,
        "https://user:hunter2@example.org/models",
    ]
    assert len(findings("\n".join(planted))) == len(planted)
    assert looks_random("x9Kp2mQ7vL4sT8wZ1rY6nB3cF5hJ0dGa7Qe")
    assert not looks_random("qatflow-optimum-service-account")
