"""One benchmark run, step by step; every figure lands in one report dictionary."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import measure, runtimes, sources
from bench.machine import machine_info
from bench.plan import Plan
from qatflow.core import qa
from qatflow.core.logs import format_seconds, step

log = logging.getLogger("bench")
STEPS = 6
# Which raw runtime each serving backend runs, for the serving overhead ratio. Keyed by str, as
# the reports read back are; tests/bench checks that the keys are core's SERVING_BACKENDS.
SERVICE_RUNTIME: dict[str, str] = {
    "optimum": runtimes.OV_INT8,
    "onnxruntime": runtimes.ORT_OV_INT8,
}


def service_capacity(report: dict[str, Any], backend: str) -> float | None:
    """Samples/s of ``backend``'s runtime alone at the batch size of the throughput step:
    measured just before and after the service's own concurrency levels where the report has it
    (a shared machine's speed drifts over minutes), else in the throughput step."""
    entry = report.get("serving", {}).get("http", {}).get(backend, {})
    if "capacity_samples_per_second" in entry:
        return float(entry["capacity_samples_per_second"])
    found = report.get("throughput", {}).get("batched_samples_per_second", {})
    return found.get(SERVICE_RUNTIME[backend])


# The service settings the report names beside the concurrency figures.
_BATCHING_SETTINGS = ("batching", "batch_max_windows", "batch_max_delay_ms", "performance_hint")


def run_benchmark(
    models_dir: Path, model_name: str | None, plan: Plan, work_dir: Path
) -> dict[str, Any]:
    from transformers import AutoModelForQuestionAnswering

    started = time.perf_counter()
    report: dict[str, Any] = {"machine": machine_info(), "plan": plan.as_dict()}

    with step(log, 1, STEPS, "Load the published version and its FP32 source"):
        src = sources.load_sources(models_dir, model_name)
        model = AutoModelForQuestionAnswering.from_pretrained(src.fp32_dir).eval()
        fp32 = sources.convert_fp32(src, model, work_dir)
        report["model"] = _model_info(src)
        report["notes"] = src.notes
        report["sizes"] = sources.sizes(src, fp32)
        report["training_cost"] = _training_cost(src.metrics)
        chosen = runtimes.all_runtimes(src, model, fp32)
        report["runtimes"] = {r.key: r.describe() for r in chosen}
        by_key = {r.key: r for r in chosen}

    with step(log, 2, STEPS, "Accuracy of every runtime on the same eval set"):
        task = sources.eval_task(src, plan.eval_samples)
        accuracy: dict[str, Any] = {
            "eval_examples": len(task.eval_examples),
            "eval_windows": len(task.eval_features),
            "runtimes": {},
            "training_job": {
                k: src.metrics[k] for k in ("fp32", "ptq", "int8") if k in src.metrics
            },
        }
        transfer: dict[str, Any] = {
            "examples": len(task.transfer_examples),
            "runtimes": {},
            "training_job": src.metrics.get("transfer", {}),
        }
        for runtime in chosen:
            begin = time.perf_counter()
            scores = task.evaluate(runtime.infer, task.settings.eval_batch_size)
            accuracy["runtimes"][runtime.key] = {**scores, "seconds": time.perf_counter() - begin}
            log.info("%s: EM %.2f F1 %.2f", runtime.title, scores["exact_match"], scores["f1"])
            hand_written = task.evaluate_transfer(runtime.infer, task.settings.eval_batch_size)
            if hand_written is not None:
                transfer["runtimes"][runtime.key] = hand_written
                log.info(
                    "%s transfer set: EM %.2f F1 %.2f",
                    runtime.title,
                    hand_written["exact_match"],
                    hand_written["f1"],
                )
        if transfer["runtimes"]:
            accuracy["transfer"] = transfer
        report["accuracy"] = accuracy
        recorded = accuracy["training_job"].get("int8", {}).get("f1")
        rescored = accuracy["runtimes"][runtimes.OV_INT8]["f1"]
        if plan.eval_samples is None and recorded is not None and abs(recorded - rescored) > 0.5:
            src.notes.append(
                f"the published INT8 IR scores F1 {rescored:.2f} here but {recorded:.2f} in the "
                "training job: the eval set rebuilt from its settings differs (the data or its "
                "generator changed since), so compare runtimes within this run only"
            )

    examples = task.eval_examples
    # Lengths past the model's position embeddings cannot run at all: leave them out.
    positions = int(getattr(model.config, "max_position_embeddings", 512))
    lengths = sorted(n for n in {*plan.seq_lengths, src.max_seq_length} if n <= positions)
    with step(log, 3, STEPS, f"Latency at batch 1, sequence lengths {lengths}"):
        report["latency"] = {r.key: {} for r in chosen}
        for length in lengths:
            window = measure.window(
                src.tokenizer,
                measure.text_of_tokens(src.tokenizer, examples, length),
                length,
                src.doc_stride,
            )
            for runtime in chosen:
                result = measure.latency(
                    functools.partial(runtime.infer, window),
                    warmup=plan.warmup,
                    iterations=plan.iterations,
                    budget_s=plan.budget_s,
                )
                report["latency"][runtime.key][str(length)] = {
                    **result,
                    "tokens": window["input_ids"].shape[1],
                }
                log.info("%s seq %d: p50 %.2f ms", runtime.title, length, result["p50_ms"])
            # The published IR is dynamic; a static [1, seq] shape shows what fixing it would gain.
            static = runtimes.openvino_runtime(
                runtimes.OV_INT8_STATIC,
                "OpenVINO INT8 IR, static [1, seq] shape",
                "int8",
                src.version.ir_path,
                {"PERFORMANCE_HINT": "LATENCY"},
                static_shape=(1, window["input_ids"].shape[1]),
            )
            result = measure.latency(
                functools.partial(static.infer, window),
                warmup=plan.warmup,
                iterations=plan.iterations,
                budget_s=plan.budget_s,
            )
            report["latency"].setdefault(static.key, {})[str(length)] = {
                **result,
                "tokens": window["input_ids"].shape[1],
            }
            report["runtimes"].setdefault(static.key, static.describe())
            del static

    with step(log, 4, STEPS, "Throughput: batched, and concurrent async infer requests"):
        single = measure.window(
            src.tokenizer, measure.text_of_tokens(src.tokenizer, examples, 128), 128, src.doc_stride
        )
        batched = {}
        for runtime in chosen:
            batched[runtime.key] = _batched_throughput(runtime, single, plan)
            log.info(
                "%s batch %d: %.1f samples/s", runtime.title, plan.batch_size, batched[runtime.key]
            )
        report["throughput"] = {
            "sequence_length": single["input_ids"].shape[1],
            "batch_size": plan.batch_size,
            "batched_samples_per_second": batched,
            "async": {
                key: measure.openvino_async_throughput(
                    path, single, plan.concurrency, plan.requests_per_level
                )
                for key, path in (
                    (runtimes.OV_INT8, src.version.ir_path),
                    (runtimes.OV_DEFAULT, fp32["ir"]),
                )
            },
        }

    if plan.serving:
        with step(log, 5, STEPS, "End to end: HTTP services and the gRPC client"):
            report["serving"] = _serving(src, examples, by_key, plan, models_dir, work_dir)
    else:
        log.info("[5/%d] End to end: skipped", STEPS)

    del chosen, by_key, task
    if plan.bert_base:
        with step(log, 6, STEPS, "BERT-base-sized model: FP32 vs INT8 latency"):
            from bench import bert_base

            report["bert_base"] = bert_base.run(
                work_dir,
                list(plan.bert_base_seq_lengths),
                warmup=plan.warmup,
                iterations=plan.iterations,
                budget_s=plan.budget_s,
            )
    else:
        log.info("[6/%d] BERT-base-sized model: skipped", STEPS)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["duration_seconds"] = time.perf_counter() - started
    log.info("benchmark measured in %s", format_seconds(report["duration_seconds"]))
    return report


def _serving(
    src: sources.Sources,
    examples: list[Any],
    by_key: dict[str, runtimes.Runtime],
    plan: Plan,
    models_dir: Path,
    work_dir: Path,
) -> dict[str, Any]:
    """Each service on texts of chosen lengths, beside the raw runtime on the very same windows."""
    from bench import serving
    from qatflow.serving.settings import ServeSettings

    texts = {
        str(length): measure.text_of_tokens(src.tokenizer, examples, length)
        for length in plan.seq_lengths
    }
    result: dict[str, Any] = {"texts": {}, "raw": {}, "in_process": {}, "http": {}}
    for label, (question, context) in texts.items():
        features, arrays = _windows(src, question, context)
        result["texts"][label] = {
            "windows": len(features),
            "window_tokens": arrays["input_ids"].shape[1],
        }
        for key in (runtimes.TORCH_FP32, *SERVICE_RUNTIME.values()):
            result["raw"].setdefault(key, {})[label] = measure.latency(
                functools.partial(by_key[key].infer, arrays),
                warmup=plan.warmup,
                iterations=plan.iterations,
                budget_s=plan.budget_s,
            )
    result["stages"] = _request_stages(src, by_key[runtimes.OV_INT8], texts, plan)
    result["in_process"] = _in_process(src, texts, plan)

    chosen = ServeSettings.load(overrides=plan.service_settings, environ={})
    first = next(iter(texts.values()))
    single = _windows(src, *first)[1]
    for backend, key in SERVICE_RUNTIME.items():
        log.info("starting the %s service", backend)
        entry: dict[str, Any] = {
            "latency": {},
            "concurrency": {},
            "settings": {
                "max_concurrency": max(plan.concurrency),
                **{
                    name: getattr(chosen, name)
                    for name in dict.fromkeys([*_BATCHING_SETTINGS, *plan.service_settings])
                },
            },
        }
        with serving.http_service(
            backend,
            models_dir,
            src.version.name,
            work_dir / f"{backend}-service.log",
            max(plan.concurrency),
            **plan.service_settings,
        ) as (url, watch, startup):
            entry["startup_seconds"] = startup
            for label, (question, context) in texts.items():
                entry["latency"][label] = serving.http_latency(
                    url,
                    {"question": question, "context": context},
                    warmup=plan.warmup,
                    iterations=plan.iterations,
                    budget_s=plan.budget_s,
                )
                log.info(
                    "HTTP %s seq %s: p50 %.2f ms", backend, label, entry["latency"][label]["p50_ms"]
                )
            capacities = [_batched_throughput(by_key[key], single, plan)]
            for clients in plan.concurrency:
                entry["concurrency"][str(clients)] = serving.http_concurrent(
                    url,
                    {"question": first[0], "context": first[1]},
                    clients,
                    plan.requests_per_level,
                )
            capacities.append(_batched_throughput(by_key[key], single, plan))
            entry["peak_rss_bytes"] = watch.stop()
        entry["capacity_runs"] = capacities
        entry["capacity_samples_per_second"] = sum(capacities) / len(capacities)
        log.info(
            "%s runtime beside the %s service: %s samples/s at batch %d",
            key,
            backend,
            " then ".join(f"{value:.1f}" for value in capacities),
            plan.batch_size,
        )
        result["http"][backend] = entry

    result["pytorch_peak_rss_bytes"] = serving.pytorch_peak_rss(src.fp32_dir, src.max_seq_length)
    log.info("starting the gRPC test server")
    result["grpc"] = serving.grpc_latency(
        models_dir,
        src.version,
        texts,
        warmup=plan.warmup,
        iterations=plan.iterations,
        budget_s=plan.budget_s,
    )
    return result


def _batched_throughput(
    runtime: runtimes.Runtime, single: dict[str, np.ndarray], plan: Plan
) -> float:
    """Samples/s of ``runtime`` in sequential calls of one window repeated to the plan's batch."""
    batch = {name: np.repeat(value, plan.batch_size, axis=0) for name, value in single.items()}
    return measure.throughput(
        functools.partial(runtime.infer, batch),
        plan.batch_size,
        warmup=1,
        iterations=plan.batch_iterations,
    )


def _windows(
    src: sources.Sources, question: str, context: str
) -> tuple[list[qa.Feature], dict[str, np.ndarray]]:
    """One question's windows as the service makes them, and their padded model inputs."""
    features = qa.encode(
        src.tokenizer,
        [question],
        [context],
        max_length=src.max_seq_length,
        doc_stride=src.doc_stride,
    )
    return features, qa.pad(features, src.tokenizer.pad_token_id)


def _request_stages(
    src: sources.Sources,
    runtime: runtimes.Runtime,
    texts: dict[str, tuple[str, str]],
    plan: Plan,
) -> dict[str, dict[str, Any]]:
    """The service's own steps of one question, each timed alone with the functions the service
    calls: parsing and validating the body, tokenizing, span selection on the runtime's real
    logits, encoding the reply. What the service adds to the raw runtime, step by step."""
    from starlette.responses import JSONResponse

    from qatflow.serving.schemas import QUESTION_ANSWERING_FORM, parse_request
    from qatflow.serving.settings import ServeSettings

    settings = ServeSettings.load(overrides=plan.service_settings, environ={})
    result: dict[str, dict[str, Any]] = {}
    for label, (question, context) in texts.items():
        body = json.dumps({"question": question, "context": context}).encode()
        tokenize = functools.partial(_windows, src, question, context)
        features, arrays = tokenize()
        start, end = runtime.infer(arrays)[:2]  # the QA model's start_logits, end_logits
        spans = functools.partial(
            qa.best_answers,
            features,
            start,
            end,
            [context],
            top_k=1,
            max_answer_len=settings.max_answer_length,
        )
        steps: dict[str, Callable[[], Any]] = {
            "parse": functools.partial(
                parse_request, body, settings.max_batch_size, QUESTION_ANSWERING_FORM
            ),
            "tokenize": tokenize,
            "spans": spans,
            "reply": functools.partial(JSONResponse, spans()[0][0].as_dict()),
        }
        result[label] = {
            name: measure.latency(
                call, warmup=plan.warmup, iterations=plan.iterations, budget_s=plan.budget_s
            )
            for name, call in steps.items()
        }
    return result


def _in_process(
    src: sources.Sources, texts: dict[str, tuple[str, str]], plan: Plan
) -> dict[str, Any]:
    """Each service's backend called in this process: tokenization and span selection included,
    HTTP excluded. The step between the raw runtime and the service, to locate the overhead."""
    from qatflow.serving.backends import create_backend
    from qatflow.serving.backends.base import Question
    from qatflow.serving.settings import ServeSettings

    result: dict[str, Any] = {}
    for backend_name in SERVICE_RUNTIME:
        backend = create_backend(
            ServeSettings.load(
                overrides={**plan.service_settings, "backend": backend_name}, environ={}
            )
        )
        backend.load(src.version)
        result[backend_name] = {
            label: measure.latency(
                functools.partial(backend.answer, [Question(question, context)]),
                warmup=plan.warmup,
                iterations=plan.iterations,
                budget_s=plan.budget_s,
            )
            for label, (question, context) in texts.items()
        }
        backend.unload()
    return result


def _model_info(src: sources.Sources) -> dict[str, Any]:
    manifest = src.version.manifest
    return {
        "name": src.version.name,
        "version": src.version.version,
        "path": str(src.version.path),
        "created": manifest.get("created"),
        "source_model": manifest.get("source_model"),
        "fp32_source": src.fp32_dir,
        "fp32_origin": src.fp32_origin,
        "max_seq_length": src.max_seq_length,
        "doc_stride": src.doc_stride,
        "inputs": src.inputs,
    }


def _training_cost(metrics: dict[str, Any]) -> dict[str, Any]:
    """QAT vs FP32 step time, as the training job measured them."""
    timings = metrics.get("timings", {})
    cost: dict[str, Any] = {
        key: timings[key]
        for key in ("fp32_training", "qat_training", "calibration_seconds", "export_seconds")
        if key in timings
    }
    fp32, qat = timings.get("fp32_training"), timings.get("qat_training")
    if fp32 and qat:
        cost["qat_vs_fp32_step_time"] = qat["seconds_per_step"] / fp32["seconds_per_step"]
    settings = metrics.get("settings", {})
    cost["batch_size"] = settings.get("batch_size")
    return cost
