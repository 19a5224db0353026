"""The OVMS config.json generated for a published model fits the model OVMS will load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

import qatflow
from qatflow.core.artifacts import ArtifactError
from qatflow.ovms.config import (
    DYNAMIC_SHAPE,
    OVMS_IMAGE,
    OvmsConfigError,
    check_against_ir,
    config_for_version,
    model_server_config,
    ready_path,
    server_args,
)

SERVICES_DIR = Path(qatflow.__file__).resolve().parents[1]


def ovms_config(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SERVICES_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "qatflow.cli", "ovms-config", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_config_names_the_irs_inputs_with_dynamic_batch_and_sequence(published_model):
    config = config_for_version(published_model)
    [entry] = config["model_config_list"]
    model = entry["config"]

    ir = ov.Core().read_model(str(published_model.ir_path))
    assert set(model["shape"]) == {port.get_any_name() for port in ir.inputs}
    assert set(model["shape"].values()) == {DYNAMIC_SHAPE}
    assert all(dim.is_dynamic for port in ir.inputs for dim in port.get_partial_shape())
    ir_outputs = {name for port in ir.outputs for name in port.get_names()}
    assert set(published_model.manifest["outputs"]) <= ir_outputs

    assert model["name"] == published_model.name
    assert model["plugin_config"] == {"PERFORMANCE_HINT": "LATENCY"}
    assert model["target_device"] == "CPU"
    check_against_ir(config, published_model.ir_path, published_model.manifest["outputs"])


def test_base_path_is_the_published_layout_under_the_mount(published_model):
    """OVMS reads <base_path>/<N>/ directly: the published directory, nothing copied."""
    config = config_for_version(published_model, models_mount="/mnt/models")
    base_path = config["model_config_list"][0]["config"]["base_path"]
    models_dir = published_model.path.parent.parent
    local = models_dir / Path(base_path).relative_to("/mnt/models")
    assert local == published_model.path.parent
    assert (local / str(published_model.version) / "openvino_model.xml").is_file()


def test_config_with_other_inputs_than_the_ir_is_refused(published_model):
    config = model_server_config(published_model.name, inputs=["input_ids", "attention_mask"])
    with pytest.raises(OvmsConfigError, match="differ from the IR"):
        check_against_ir(config, published_model.ir_path, ["start_logits", "end_logits"])


def test_outputs_missing_from_the_ir_are_refused(published_model):
    config = config_for_version(published_model)
    with pytest.raises(OvmsConfigError, match="lacks the outputs"):
        check_against_ir(config, published_model.ir_path, ["start_logits", "logits"])


def test_static_ir_is_refused(published_model, tmp_path):
    model = ov.Core().read_model(str(published_model.ir_path))
    model.reshape({port.get_any_name(): [1, 96] for port in model.inputs})
    static_ir = tmp_path / "static.xml"
    ov.save_model(model, static_ir)
    with pytest.raises(OvmsConfigError, match=r"is not \[\?, \?\]"):
        check_against_ir(config_for_version(published_model), static_ir, ["start_logits"])


def test_invalid_model_name_is_refused():
    with pytest.raises(ArtifactError, match="invalid model name"):
        model_server_config("Bad Name")


def test_ports_and_probe_path():
    args = server_args(grpc_port=9001, rest_port=8001)
    assert args[args.index("--port") + 1] == "9001"
    assert args[args.index("--rest_port") + 1] == "8001"
    assert args[args.index("--config_path") + 1] == "/config/config.json"
    assert ready_path("tiny-qa") == "/v2/models/tiny-qa/ready"
    image, tag = OVMS_IMAGE.split(":")
    assert image == "openvino/model_server" and tag[0].isdigit()


def test_cli_writes_the_config_of_a_published_model(published_model, tmp_path):
    output = tmp_path / "ovms" / "config.json"
    result = ovms_config(
        "--model",
        published_model.name,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--performance-hint",
        "THROUGHPUT",
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(output.read_text())
    assert written == config_for_version(published_model, performance_hint="THROUGHPUT")
    assert OVMS_IMAGE in result.stderr


def test_cli_without_a_model_prints_the_contract_config():
    result = ovms_config("--model", "qa", "--models-mount", "/data")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)["model_config_list"][0]["config"]
    assert config["base_path"] == "/data/qa"
    assert list(config["shape"]) == ["input_ids", "attention_mask", "token_type_ids"]


def test_cli_reports_a_missing_model(tmp_path):
    result = ovms_config("--model", "qa", "--models-dir", str(tmp_path))
    assert result.returncode == 3
    assert "no published version" in result.stderr


def test_pinned_version_and_nireq(published_model):
    config = config_for_version(published_model, pin_version=True, nireq=2)
    model = config["model_config_list"][0]["config"]
    assert model["model_version_policy"] == {"specific": {"versions": [published_model.version]}}
    assert model["nireq"] == 2
    unpinned = config_for_version(published_model)["model_config_list"][0]["config"]
    assert unpinned["model_version_policy"] == {"latest": {"num_versions": 1}}
    assert "nireq" not in unpinned


def test_cli_usage_errors():
    assert ovms_config("--model", "qa", "--pin-version").returncode == 2
    assert ovms_config("--model", "qa", "--nireq", "0").returncode == 2


def test_config_of_a_text_classification_model_is_checked_against_its_logits(
    published_classifier, tmp_path
):
    output = tmp_path / "config.json"
    result = ovms_config(
        "--model",
        published_classifier.name,
        "--models-dir",
        str(published_classifier.path.parent.parent),
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(output.read_text()) == config_for_version(published_classifier)
    config = config_for_version(published_classifier)
    check_against_ir(config, published_classifier.ir_path, ["logits"])
    with pytest.raises(OvmsConfigError, match="start_logits"):
        check_against_ir(config, published_classifier.ir_path, ["start_logits"])
