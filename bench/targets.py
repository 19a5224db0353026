"""The issue's targets, each judged from figures of the same run: met, missed or not measured."""

from __future__ import annotations

from typing import Any

from bench import runtimes as rt


def _p50(series: dict[str, Any] | None, label: str) -> float | None:
    entry = (series or {}).get(label)
    return None if not entry else float(entry["p50_ms"])


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _target(
    name: str,
    measured: float | None,
    limit: float,
    *,
    at_most: bool = True,
    unit: str = "x",
    note: str = "",
) -> dict[str, Any]:
    met = None if measured is None else (measured <= limit if at_most else measured >= limit)
    return {
        "target": name,
        "limit": f"{'<=' if at_most else '>='} {limit:g}{unit}",
        "measured": None if measured is None else round(measured, 3),
        "unit": unit,
        "met": met,
        "note": note,
    }


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    serving = report.get("serving") or {}
    raw = serving.get("raw", {})
    http = serving.get("http", {})
    bert = report.get("bert_base")
    labels = list(serving.get("texts", {}))
    long_label = "384" if "384" in labels else (labels[-1] if labels else None)

    # Served INT8 vs PyTorch FP32, BERT-base: raw ratio times the measured serving overhead.
    if bert:
        raw_ratio = _ratio(
            _p50(bert["latency"][rt.OV_INT8], "128"), _p50(bert["latency"][rt.TORCH_FP32], "128")
        )
        first = labels[0] if labels else None
        overhead = _ratio(
            _p50(http.get("optimum", {}).get("latency"), first) if first else None,
            _p50(raw.get(rt.OV_INT8), first) if first else None,
        )
        estimate = None if raw_ratio is None or overhead is None else raw_ratio * overhead
        found.append(
            _target(
                "BERT-base: served INT8 HTTP p50 vs PyTorch FP32 eager, seq 128",
                estimate if estimate is not None else raw_ratio,
                0.25,
                note=(
                    f"raw OpenVINO INT8 ratio {raw_ratio:.3f} x the default model's measured HTTP "
                    f"overhead {overhead:.3f} (BERT-base is not served over HTTP here)"
                )
                if estimate is not None
                else "raw ratio only: no serving overhead measured",
            )
        )
    if long_label:
        windows = serving["texts"][long_label]["windows"]
        found.append(
            _target(
                f"default model: served INT8 HTTP p50 vs PyTorch FP32 eager, "
                f"{long_label}-token text",
                _ratio(
                    _p50(http.get("optimum", {}).get("latency"), long_label),
                    _p50(raw.get(rt.TORCH_FP32), long_label),
                ),
                0.33,
                note=f"optimum service; the text makes {windows} window(s) of "
                f"{serving['texts'][long_label]['window_tokens']} tokens, PyTorch runs the same "
                "windows",
            )
        )
    latency = report.get("latency", {})
    for length in sorted(latency.get(rt.OV_INT8, {}), key=int)[-1:] if latency else []:
        found.append(
            _target(
                f"default model: OpenVINO INT8 vs default-precision latency, seq {length}",
                _ratio(_p50(latency[rt.OV_INT8], length), _p50(latency[rt.OV_DEFAULT], length)),
                0.65,
                note="default precision here: "
                + report["runtimes"][rt.OV_DEFAULT]["inference_precision"],
            )
        )
    if bert:
        found.append(
            _target(
                "BERT-base: OpenVINO INT8 vs default-precision latency, seq 128",
                _ratio(
                    _p50(bert["latency"][rt.OV_INT8], "128"),
                    _p50(bert["latency"][rt.OV_DEFAULT], "128"),
                ),
                0.65,
                note="default precision here: "
                + bert["runtimes"][rt.OV_DEFAULT]["inference_precision"],
            )
        )
    accuracy = report.get("accuracy", {})
    scores = accuracy.get("runtimes", {})
    if rt.OV_INT8 in scores and rt.TORCH_FP32 in scores:
        fp32_f1 = scores[rt.TORCH_FP32]["f1"]
        trained = report.get("model", {}).get("fp32_origin") == "fp32_model_dir"
        if not trained:
            note = "not measured: no fine-tuned FP32 model (fp32_model_dir) to compare with"
        elif fp32_f1 >= 99:
            note = "eval set saturated (FP32 F1 >= 99): it cannot show a quantization loss"
        else:
            note = f"{accuracy['eval_examples']} examples"
        found.append(
            _target(
                "QAT INT8 F1 drop vs FP32 (OpenVINO INT8 IR vs PyTorch FP32, same eval set)",
                fp32_f1 - scores[rt.OV_INT8]["f1"] if trained else None,
                0.5,
                unit=" F1 points",
                note=note,
            )
        )
    job = accuracy.get("training_job", {})
    if "ptq" in job and "int8" in job:
        found.append(
            _target(
                "QAT INT8 F1 minus PTQ INT8 F1 (training job's eval set)",
                job["int8"]["f1"] - job["ptq"]["f1"],
                0.0,
                at_most=False,
                unit=" F1 points",
            )
        )
    found += _serving_targets(report, labels)
    sizes = report.get("sizes", {})
    if sizes:
        found.append(
            _target("INT8 IR size vs FP32 IR size", sizes["ir_int8"] / sizes["ir_fp32"], 0.26)
        )
    return found


def _serving_targets(report: dict[str, Any], labels: list[str]) -> list[dict[str, Any]]:
    """Each service against the runtime it runs, measured in the same run."""
    from bench.run import SERVICE_RUNTIME, service_capacity

    serving = report.get("serving") or {}
    raw, http = serving.get("raw", {}), serving.get("http", {})
    batch_size = report.get("throughput", {}).get("batch_size")
    limits = {"128": 1.2, "384": 1.1}
    found = []
    for backend, key in SERVICE_RUNTIME.items():
        entry = http.get(backend)
        if not entry:
            continue
        for label in labels:
            found.append(
                _target(
                    f"{backend} service HTTP p50 vs its raw runtime, {label}-token text, 1 client",
                    _ratio(_p50(entry["latency"], label), _p50(raw.get(key), label)),
                    limits.get(label, 1.2),
                    note="same windows; the service adds tokenization, span selection, JSON, "
                    "HTTP and the client",
                )
            )
        levels = entry.get("concurrency", {})
        eight = levels.get("8", {}).get("throughput_rps")
        found.append(
            _target(
                f"{backend} service req/s at 8 clients vs its runtime's batched capacity",
                _ratio(eight, service_capacity(report, backend)),
                0.9,
                at_most=False,
                note=f"capacity: raw runtime, batch {batch_size}, 128 tokens, LATENCY hint, "
                "measured before and after the service's levels; one window per request",
            )
        )
        sixteen = levels.get("16", {})
        found.append(
            _target(
                f"{backend} service p99 vs p50 latency at 16 clients",
                _ratio(sixteen.get("p99_ms"), sixteen.get("p50_ms")),
                2.0,
            )
        )
    grpc = serving.get("grpc", {}).get("latency", {})
    for label in labels[:1]:
        found.append(
            _target(
                f"gRPC client (KServe v2) -> test server p50 vs raw OpenVINO INT8, {label}-token "
                "text",
                _ratio(_p50(grpc, label), _p50(raw.get(rt.OV_INT8), label)),
                1.3,
                note="the test server runs the IR with OpenVINO; the client tokenizes and selects "
                "spans",
            )
        )
    return found
