"""Export of the quantization-aware-trained model: INT8 OpenVINO IR and INT8 QDQ ONNX."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

from qatflow.core.artifacts import IR_FILE, ONNX_FILE
from qatflow.training.task import Infer


class ExportError(RuntimeError):
    """An export that failed or does not hold the INT8 model it should."""


class _TraceableModel(torch.nn.Module):
    """Builds the 4-D additive attention mask itself and returns a plain tuple.

    Tracing a Hugging Face BERT directly fails under transformers 5.5 (its SDPA mask helper
    mistakes the traced length for a cache position); a ready mask avoids that path.
    """

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)

    def forward(self, *inputs: torch.Tensor) -> Any:
        named = dict(zip(self.input_names, inputs, strict=True))
        mask = named["attention_mask"][:, None, None, :].to(torch.float32)
        named["attention_mask"] = (1.0 - mask) * torch.finfo(torch.float32).min
        return self.model(**named, return_dict=False)


def export_openvino(onnx_path: Path, directory: Path, *, require_quantized: bool = True) -> Path:
    """Convert the exported ONNX model to an IR in ``directory``: INT8 (FakeQuantize ops,
    int8 weights) from the QDQ ONNX of a quantized model, or FP32 with
    ``require_quantized=False`` (benchmarks). Input/output names and the dynamic
    [batch, sequence] axes come from the ONNX model.

    Converting the ONNX gives the same IR as tracing the torch model again (identical
    outputs and weights, measured on MiniLM) in a seventh of the time.
    """
    converted = ov.convert_model(onnx_path)
    path = directory / IR_FILE
    ov.save_model(converted, path, compress_to_fp16=False)
    if require_quantized and ir_quantization(path)["fake_quantize"] == 0:
        raise ExportError(f"{path} holds no FakeQuantize ops: the model was not quantized")
    return path


def export_onnx(
    model: torch.nn.Module,
    example: dict[str, torch.Tensor],
    output_names: Sequence[str],
    directory: Path,
    *,
    require_quantized: bool = True,
) -> Path:
    """Save INT8 ONNX with standard QuantizeLinear/DequantizeLinear pairs (or FP32 ONNX of an
    unquantized model with ``require_quantized=False``).

    NNCF's default export writes its own FakeQuantize op, which ONNX Runtime rejects.
    """
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    quantizers = [m for m in model.modules() if isinstance(m, BaseQuantizer)]
    previous = [q._export_mode for q in quantizers]
    for quantizer in quantizers:
        quantizer._export_mode = QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS
    path = directory / ONNX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(example)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, *output_names]}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The trace turns NNCF's integer quantization levels and the encoder attention's
            # causal flag (false for every input) into constants, as it should, and warns of
            # each one in the training log.
            warnings.filterwarnings(
                "ignore", category=torch.jit.TracerWarning, module=r"(nncf|transformers)\."
            )
            torch.onnx.export(
                _TraceableModel(model, names).eval(),
                tuple(example.values()),
                str(path),
                dynamo=False,  # torch.export cannot trace NNCF's quantizers
                input_names=names,
                output_names=list(output_names),
                dynamic_axes=dynamic,
                opset_version=17,
            )
    finally:
        for quantizer, mode in zip(quantizers, previous, strict=True):
            quantizer._export_mode = mode
    summary = onnx_quantization(path)
    if require_quantized and (summary["QuantizeLinear"] == 0 or summary["DequantizeLinear"] == 0):
        raise ExportError(f"{path} holds no QuantizeLinear/DequantizeLinear pairs")
    return path


def ir_quantization(path: Path) -> dict[str, int]:
    """FakeQuantize ops and low-precision constants in an IR: the proof it is INT8."""
    model = ov.Core().read_model(path)
    ops = model.get_ordered_ops()
    low_precision = {ov.Type.i8, ov.Type.u8}
    return {
        "fake_quantize": sum(op.get_type_name() == "FakeQuantize" for op in ops),
        "int8_constants": sum(
            op.get_type_name() == "Constant" and op.get_output_element_type(0) in low_precision
            for op in ops
        ),
    }


def onnx_quantization(path: Path) -> dict[str, int]:
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    return {
        op: sum(node.op_type == op for node in nodes)
        for op in ("QuantizeLinear", "DequantizeLinear")
    }


def openvino_infer(path: Path, config: dict[str, Any] | None = None) -> Infer:
    """Run an IR as the Optimum service does: OpenVINO CPU, ``config`` as its compile config."""
    compiled = ov.Core().compile_model(path, "CPU", config or {})
    names = [port.get_any_name() for port in compiled.inputs]
    request = compiled.create_infer_request()

    def infer(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = request.infer({name: arrays[name] for name in names})
        return [np.array(results[port]) for port in compiled.outputs]

    return infer


def torch_infer(model: torch.nn.Module, output_names: Sequence[str]) -> Infer:
    device = next(model.parameters()).device
    model.eval()

    def infer(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            outputs = model(
                **{name: torch.from_numpy(value).to(device) for name, value in arrays.items()}
            )
        return [outputs[name].float().cpu().numpy() for name in output_names]

    return infer
