"""Each runtime as one function from padded int64 arrays to output arrays, the shape
``QuestionAnsweringTask.evaluate`` and the timers take, so every runtime is scored and timed
by the same code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Infer = Callable[[dict[str, np.ndarray]], list[np.ndarray]]

TORCH_FP32 = "pytorch-fp32"
OV_FP32 = "openvino-fp32"
OV_DEFAULT = "openvino-default"
OV_INT8 = "openvino-int8"
OV_INT8_F32 = "openvino-int8-f32"
OV_INT8_BF16 = "openvino-int8-bf16"
OV_INT8_STATIC = "openvino-int8-static"
ORT_OV_INT8 = "ort-openvino-ep-int8"
ORT_CPU_INT8 = "ort-cpu-ep-int8"


@dataclass
class Runtime:
    key: str
    title: str
    precision: str  # the weights' precision: fp32 or int8
    infer: Infer
    detail: dict[str, Any] = field(default_factory=dict)  # with the ops' `inference_precision`

    def describe(self) -> dict[str, Any]:
        """The report's entry for this runtime."""
        return {"title": self.title, "precision": self.precision, **self.detail}


def torch_runtime(model: Any, inputs: Sequence[str], outputs: Sequence[str]) -> Runtime:
    import torch

    from qatflow.training.export import torch_infer

    run = torch_infer(model.eval(), outputs)
    return Runtime(
        TORCH_FP32,
        "PyTorch FP32 eager",
        "fp32",
        _only(run, inputs),
        {"threads": torch.get_num_threads(), "inference_precision": "f32"},
    )


def openvino_runtime(
    key: str,
    title: str,
    precision: str,
    path: Path,
    config: dict[str, str],
    static_shape: tuple[int, int] | None = None,
) -> Runtime:
    """OpenVINO CPU; the compiled model's actual execution precision goes in the report."""
    import openvino as ov

    from qatflow.core.precision import HINT, type_name

    core = ov.Core()
    if static_shape is None:
        compiled = core.compile_model(path, "CPU", config)
    else:  # every input fixed to one [batch, sequence]: lets the plugin skip shape inference
        model = core.read_model(path)
        model.reshape({port.get_any_name(): list(static_shape) for port in model.inputs})
        compiled = core.compile_model(model, "CPU", config)
    names = [port.get_any_name() for port in compiled.inputs]
    request = compiled.create_infer_request()

    def infer(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        results = request.infer({name: arrays[name] for name in names})
        return [np.array(results[port]) for port in compiled.outputs]

    detail = {
        "config": config,
        "inference_precision": type_name(compiled.get_property(HINT)),
        "threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
        "model": str(path),
        "static_shape": list(static_shape) if static_shape else None,
    }
    return Runtime(key, title, precision, infer, detail)


def onnxruntime_runtime(key: str, title: str, path: Path, provider: str) -> Runtime:
    """ONNX Runtime on one execution provider, with no silent fallback to another."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    provider_options: dict[str, str] = {}
    inference_precision = "f32"  # the CPU EP runs what is not INT8 in f32
    if provider == "OpenVINOExecutionProvider":
        # The onnxruntime service's own options, so "raw" and "served" run the same session.
        from qatflow.serving.backends.onnxruntime import OnnxRuntimeBackend
        from qatflow.serving.settings import ServeSettings

        backend = OnnxRuntimeBackend(ServeSettings.load(environ={}))
        provider_options = backend.provider_options()
        inference_precision = backend.plugin.resolve(backend.settings.inference_precision)
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=[provider], provider_options=[provider_options]
    )
    if session.get_providers()[0] != provider:
        raise RuntimeError(f"ONNX Runtime did not enable {provider}: {session.get_providers()}")
    names = [item.name for item in session.get_inputs()]
    outputs = [item.name for item in session.get_outputs()]

    def infer(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(a) for a in session.run(outputs, {n: arrays[n] for n in names})]

    detail = {
        "provider": provider,
        "provider_options": provider_options,
        "inference_precision": inference_precision,
        "model": str(path),
    }
    return Runtime(key, title, "int8", infer, detail)


def all_runtimes(sources: Any, model: Any, fp32: dict[str, Path]) -> list[Runtime]:
    """Every runtime of the report, PyTorch FP32 eager (the baseline of every ratio) first."""
    latency = {"PERFORMANCE_HINT": "LATENCY"}
    version = sources.version
    return [
        torch_runtime(model, sources.inputs, sources.outputs),
        openvino_runtime(
            OV_FP32,
            "OpenVINO FP32 IR, f32 forced",
            "fp32",
            fp32["ir"],
            {**latency, "INFERENCE_PRECISION_HINT": "f32"},
        ),
        openvino_runtime(
            OV_DEFAULT, "OpenVINO FP32 IR, default precision", "fp32", fp32["ir"], latency
        ),
        openvino_runtime(
            OV_INT8, "OpenVINO INT8 IR, default precision", "int8", version.ir_path, latency
        ),
        *_int8_precision_pair(version.ir_path, latency),
        onnxruntime_runtime(
            ORT_OV_INT8,
            "ONNX Runtime OpenVINO EP, INT8",
            version.onnx_path,
            "OpenVINOExecutionProvider",
        ),
        onnxruntime_runtime(
            ORT_CPU_INT8,
            "ONNX Runtime CPU EP, INT8 (reference)",
            version.onnx_path,
            "CPUExecutionProvider",
        ),
    ]


def _int8_precision_pair(path: Path, config: dict[str, str]) -> list[Runtime]:
    """The INT8 IR with its other ops at f32 and at bf16, on CPUs that compute bf16."""
    from qatflow.core.precision import HINT, openvino_cpu_plugin

    if openvino_cpu_plugin().resolve("bf16") != "bf16":
        return []
    return [
        openvino_runtime(
            key, f"OpenVINO INT8 IR, {name} forced", "int8", path, {**config, HINT: name}
        )
        for key, name in ((OV_INT8_F32, "f32"), (OV_INT8_BF16, "bf16"))
    ]


def _only(infer: Infer, names: Sequence[str]) -> Infer:
    """Pass the model only the inputs it declares (the padder makes token_type_ids for all)."""
    wanted = list(names)
    return lambda arrays: infer({name: arrays[name] for name in wanted})
