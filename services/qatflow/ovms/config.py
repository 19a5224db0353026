"""The OpenVINO Model Server configuration for a published model (either task).

OVMS serves ``base_path = <mount>/<name>`` and treats every numeric subdirectory as a version,
serving the highest: exactly the artifact contract's layout, so the volume is mounted as is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from qatflow.core.artifacts import ModelVersion, validate_name
from qatflow.core.tasks import MODEL_INPUTS, QUESTION_ANSWERING, TASK_OUTPUTS

# The official image the chart runs. 2026.4.0 matches the OpenVINO 2026.4 runtime the model is
# exported and tested with; it speaks KServe v2 (gRPC and REST) only, no TF-Serving API.
OVMS_IMAGE = "openvino/model_server:2026.4.0"
GRPC_PORT = 9000
REST_PORT = 8000
# Where the chart mounts the shared models volume and the ConfigMap inside the OVMS container.
MODELS_MOUNT = "/models"
CONFIG_MOUNT = "/config/config.json"
# What the artifact contract publishes when no model exists yet to read them from (a
# text-classification version names its own outputs, ["logits"], in its manifest).
CONTRACT_INPUTS = MODEL_INPUTS
CONTRACT_OUTPUTS = TASK_OUTPUTS[QUESTION_ANSWERING]
# Batch and sequence length both free: one compiled model serves any request shape.
DYNAMIC_SHAPE = "(-1,-1)"

PerformanceHint = Literal["LATENCY", "THROUGHPUT"]


class OvmsConfigError(ValueError):
    """A configuration that does not fit the model it is meant to serve."""


def ready_path(name: str) -> str:
    """REST path of the KServe v2 model-ready check (200 once the model is loaded)."""
    return f"/v2/models/{name}/ready"


def model_server_config(
    name: str,
    *,
    inputs: Sequence[str] = CONTRACT_INPUTS,
    models_mount: str = MODELS_MOUNT,
    performance_hint: PerformanceHint = "LATENCY",
    version: int | None = None,
    nireq: int | None = None,
) -> dict[str, Any]:
    """The ``config.json`` OVMS reads with ``--config_path`` (the chart renders the same)."""
    validate_name(name)
    if not inputs:
        raise OvmsConfigError("the model needs at least one input")
    if version is not None and version < 1:
        raise OvmsConfigError(f"version must be a positive integer, got {version}")
    # The newest version only, unless one is pinned; older ones stay on disk for rollback.
    policy: dict[str, Any] = (
        {"latest": {"num_versions": 1}}
        if version is None
        else {"specific": {"versions": [version]}}
    )
    model: dict[str, Any] = {
        "name": name,
        "base_path": f"{models_mount.rstrip('/')}/{name}",
        "target_device": "CPU",
        "shape": {input_name: DYNAMIC_SHAPE for input_name in inputs},
        "plugin_config": {"PERFORMANCE_HINT": performance_hint},
        "model_version_policy": policy,
    }
    if nireq is not None:
        model["nireq"] = nireq
    return {"model_config_list": [{"config": model}]}


def config_for_version(
    version: ModelVersion,
    *,
    models_mount: str = MODELS_MOUNT,
    performance_hint: PerformanceHint = "LATENCY",
    pin_version: bool = False,
    nireq: int | None = None,
) -> dict[str, Any]:
    """The config for a published model, with the input names its manifest declares."""
    inputs = version.manifest.get("inputs") or CONTRACT_INPUTS
    return model_server_config(
        version.name,
        inputs=[str(name) for name in inputs],
        models_mount=models_mount,
        performance_hint=performance_hint,
        version=version.version if pin_version else None,
        nireq=nireq,
    )


def server_args(
    *,
    config_path: str = CONFIG_MOUNT,
    grpc_port: int = GRPC_PORT,
    rest_port: int = REST_PORT,
    poll_seconds: int = 5,
) -> list[str]:
    """Container arguments: ports are flags, not config.json keys."""
    return [
        "--config_path",
        config_path,
        "--port",
        str(grpc_port),
        "--rest_port",
        str(rest_port),
        # New versions published by the training job are picked up without a restart.
        "--file_system_poll_wait_seconds",
        str(poll_seconds),
    ]


def check_against_ir(config: dict[str, Any], ir_path: Path, outputs: Sequence[str]) -> None:
    """Raise if the config names inputs the IR lacks, or the IR is not fully dynamic."""
    import openvino as ov

    model = ov.Core().read_model(str(ir_path))
    ir_inputs = {port.get_any_name(): port for port in model.inputs}
    ir_outputs = {name for port in model.outputs for name in port.get_names()}
    for entry in config["model_config_list"]:
        shapes = entry["config"]["shape"]
        if set(shapes) != set(ir_inputs):
            raise OvmsConfigError(
                f"config inputs {sorted(shapes)} differ from the IR's {sorted(ir_inputs)}"
            )
        static = [name for name, shape in shapes.items() if shape != DYNAMIC_SHAPE]
        if static:
            raise OvmsConfigError(f"config pins a static shape for {static}")
        for input_name, port in ir_inputs.items():
            shape = port.get_partial_shape()
            if shape.rank.is_dynamic or not all(dim.is_dynamic for dim in shape):
                raise OvmsConfigError(f"IR input {input_name} is not [?, ?]: {shape}")
    missing = [name for name in outputs if name not in ir_outputs]
    if missing:
        raise OvmsConfigError(f"IR lacks the outputs {missing} (has {sorted(ir_outputs)})")


def write_config(config: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
