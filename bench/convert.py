"""FP32 OpenVINO IR and FP32 ONNX of an unquantized model, the FP32 side of every comparison.

``qatflow.training.export.export_openvino`` refuses a model without FakeQuantize ops (its job is
the INT8 export), so the FP32 conversion is done here with the same traceable wrapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qatflow.core.artifacts import IR_FILE


def fp32_ir(model: Any, example: dict[str, Any], outputs: Sequence[str], directory: Path) -> Path:
    """IR with f32 weights (no fp16 compression) and dynamic [batch, sequence] inputs."""
    import openvino as ov
    import torch

    from qatflow.training.export import _TraceableModel

    directory.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        converted = ov.convert_model(
            _TraceableModel(model, list(example)).eval(), example_input=tuple(example.values())
        )
    for port, name in zip(converted.inputs, example, strict=True):
        port.get_tensor().set_names({name})
        port.get_node().set_partial_shape(ov.PartialShape([-1, -1]))
    for port, name in zip(converted.outputs, outputs, strict=True):
        port.get_tensor().set_names({name})
    converted.validate_nodes_and_infer_types()
    path = directory / IR_FILE
    ov.save_model(converted, path, compress_to_fp16=False)
    return path


def fp32_onnx(model: Any, example: dict[str, Any], outputs: Sequence[str], directory: Path) -> Path:
    import torch

    from qatflow.training.export import _TraceableModel

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.onnx"
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*example, *outputs]}
    with torch.no_grad():
        torch.onnx.export(
            _TraceableModel(model, list(example)).eval(),
            tuple(example.values()),
            str(path),
            dynamo=False,  # the path the INT8 export takes
            input_names=list(example),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=17,
        )
    return path


def ir_bytes(xml: Path) -> int:
    """An IR's size on disk: its .xml plus its .bin."""
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
