"""FP32 OpenVINO IR and FP32 ONNX of an unquantized model, the FP32 side of every comparison.

The training job's own export, with its INT8 check off: one conversion path for both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def fp32_onnx(model: Any, example: dict[str, Any], outputs: Sequence[str], directory: Path) -> Path:
    from qatflow.training.export import export_onnx

    directory.mkdir(parents=True, exist_ok=True)
    return export_onnx(model, example, outputs, directory, require_quantized=False)


def fp32_ir(onnx_path: Path, directory: Path) -> Path:
    """IR with f32 weights (no fp16 compression) and dynamic [batch, sequence] inputs."""
    from qatflow.training.export import export_openvino

    directory.mkdir(parents=True, exist_ok=True)
    return export_openvino(onnx_path, directory, require_quantized=False)


def ir_bytes(xml: Path) -> int:
    """An IR's size on disk: its .xml plus its .bin."""
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
