"""A BERT-base-sized model (12 layers, 768 hidden, random weights) through the training package's
own calibration and export, so the INT8 speed-up is known at a realistic size, not only on the
small default model. Random weights change no timing; accuracy is not measured here."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench import convert, measure, runtimes

log = logging.getLogger("bench")
OUTPUTS = ("start_logits", "end_logits")


def run(
    work_dir: Path, seq_lengths: list[int], *, warmup: int, iterations: int, budget_s: float
) -> dict[str, Any]:
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from qatflow.training import export, quantization

    torch.manual_seed(0)
    config = BertConfig()  # bert-base-uncased's shape: 12 layers, 768 hidden, 12 heads
    model = BertForQuestionAnswering(config).eval()
    rng = np.random.default_rng(0)
    arrays = {length: _random_window(rng, config.vocab_size, length) for length in seq_lengths}
    example = {name: torch.from_numpy(value) for name, value in arrays[seq_lengths[0]].items()}
    names = list(example)

    fp32_onnx = convert.fp32_onnx(model, example, OUTPUTS, work_dir / "bert-base-fp32")
    fp32_ir = convert.fp32_ir(fp32_onnx, work_dir / "bert-base-fp32")
    chosen = [
        runtimes.torch_runtime(model, names, OUTPUTS),
        runtimes.openvino_runtime(
            runtimes.OV_FP32,
            "OpenVINO FP32 IR, f32 forced",
            "fp32",
            fp32_ir,
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
        ),
        runtimes.openvino_runtime(
            runtimes.OV_DEFAULT,
            "OpenVINO FP32 IR, default precision",
            "fp32",
            fp32_ir,
            {"PERFORMANCE_HINT": "LATENCY"},
        ),
    ]
    log.info("BERT-base: calibrating with NNCF and exporting the INT8 IR")
    samples = [
        {
            name: torch.from_numpy(value)
            for name, value in _random_window(rng, config.vocab_size, seq_lengths[0]).items()
        }
        for _ in range(8)
    ]
    quantized = quantization.calibrate(model, samples)
    int8_dir = work_dir / "bert-base-int8"
    int8_dir.mkdir(parents=True, exist_ok=True)
    int8_ir = export.export_openvino(
        export.export_onnx(quantized, example, OUTPUTS, int8_dir), int8_dir
    )
    del quantized
    chosen.append(
        runtimes.openvino_runtime(
            runtimes.OV_INT8, "OpenVINO INT8 IR", "int8", int8_ir, {"PERFORMANCE_HINT": "LATENCY"}
        )
    )
    latency: dict[str, dict[str, Any]] = {}
    for runtime in chosen:
        latency[runtime.key] = {}
        for length, inputs in arrays.items():
            log.info("BERT-base %s seq %d", runtime.title, length)
            latency[runtime.key][str(length)] = measure.latency(
                functools.partial(runtime.infer, inputs),
                warmup=warmup,
                iterations=iterations,
                budget_s=budget_s,
            )
    return {
        "config": {
            "layers": config.num_hidden_layers,
            "hidden": config.hidden_size,
            "heads": config.num_attention_heads,
            "vocab": config.vocab_size,
        },
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "runtimes": {r.key: r.describe() for r in chosen},
        "latency": latency,
        "sizes": {
            "ir_fp32": convert.ir_bytes(fp32_ir),
            "ir_int8": convert.ir_bytes(int8_ir),
        },
    }


def _random_window(rng: np.random.Generator, vocab: int, length: int) -> dict[str, np.ndarray]:
    ids = rng.integers(1000, vocab, size=(1, length), dtype=np.int64)
    ids[0, 0], ids[0, -1] = 101, 102  # [CLS] ... [SEP]
    return {
        "input_ids": ids,
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "token_type_ids": np.zeros((1, length), dtype=np.int64),
    }
