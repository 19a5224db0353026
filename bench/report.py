"""The run's report: JSON (every figure), a Markdown summary, PNG plots, and the docs page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import runtimes as rt
from bench.machine import isa_summary

DOCS_BEGIN = "<!-- latest-run:begin -->"
DOCS_END = "<!-- latest-run:end -->"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _mib(size: int | None) -> str:
    return "—" if size is None else f"{size / 2**20:.1f} MiB"


def titled(runtimes: dict[str, Any]) -> dict[str, str]:
    """Each runtime's title with the precision its ops that are not INT8 ran at."""
    return {
        key: f"{value['title']} ({value['inference_precision']})"
        if "inference_precision" in value
        else value["title"]
        for key, value in runtimes.items()
    }


def markdown(report: dict[str, Any]) -> str:
    machine, model = report["machine"], report["model"]
    titles = titled(report["runtimes"])
    lines = [
        f"Measured {machine['date']} on **{machine['cpu_model']}**, "
        f"{machine['usable_cores']} cores, {machine['memory_gib']} GiB "
        f"(ISA: {isa_summary(machine)}; OpenVINO CPU capabilities "
        f"{', '.join(machine['openvino_cpu']['capabilities'])}, default inference precision "
        f"{machine['openvino_cpu']['default_inference_precision']}). "
        f"Load average at start {machine['load_average_at_start'][0]:.2f}, at end "
        f"{machine.get('load_average_at_end', [float('nan')])[0]:.2f}.",
        "",
        f"Model `{model['name']}` version {model['version']} (source `{model['source_model']}`, "
        f"max_seq_length {model['max_seq_length']}, doc_stride {model['doc_stride']}); FP32 "
        f"baseline from {model['fp32_origin']}. Libraries: "
        + ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
        + f". Run took {report['duration_seconds'] / 60:.1f} min"
        + (
            " (`--quick`: smoke-test settings, figures not meaningful)."
            if report.get("quick")
            else "."
        ),
        "",
        "Every ratio (×) is to PyTorch FP32 eager measured in the same run, unless the column "
        "says otherwise.",
        "",
    ]
    for note in report.get("notes", []):
        lines += [f"> Note: {note}", ""]
    lines += _targets(report) + _accuracy(report, titles) + _latency(report, titles)
    lines += _throughput(report, titles) + _serving(report) + _stages(report)
    lines += _sizes(report) + _training(report)
    lines += _bert_base(report)
    return "\n".join(lines).rstrip() + "\n"


def _targets(report: dict[str, Any]) -> list[str]:
    rows = ["## Targets", "", "| target | limit | measured | met | note |", "|---|---|---|---|---|"]
    for item in report["targets"]:
        met = {True: "met", False: "**missed**", None: "not measured"}[item["met"]]
        measured = "—" if item["measured"] is None else f"{item['measured']:.3f}{item['unit']}"
        rows.append(f"| {item['target']} | {item['limit']} | {measured} | {met} | {item['note']} |")
    return [*rows, ""]


def _accuracy(report: dict[str, Any], titles: dict[str, str]) -> list[str]:
    accuracy = report["accuracy"]
    scores = accuracy["runtimes"]
    base = scores[rt.TORCH_FP32]["f1"]
    rows = [
        "## Accuracy",
        "",
        f"{accuracy['eval_examples']} eval examples ({accuracy['eval_windows']} windows), the "
        "training "
        "job's eval set, scored through each runtime with the training job's own evaluation.",
        "",
        "| runtime | EM | F1 | ΔF1 vs PyTorch FP32 |",
        "|---|---|---|---|",
    ]
    for key, value in scores.items():
        rows.append(
            f"| {titles[key]} | {value['exact_match']:.2f} | {value['f1']:.2f} | "
            f"{value['f1'] - base:+.2f} |"
        )
    rows += _training_job_rows(accuracy["training_job"])
    rows.append("")
    if "transfer" in accuracy:
        rows += _transfer(accuracy["transfer"], titles)
    return rows


_JOB_STAGES = (
    ("fp32", "training job: FP32"),
    ("ptq", "training job: PTQ INT8"),
    ("int8", "training job: QAT INT8 IR"),
)


def _training_job_rows(scores: dict[str, Any]) -> list[str]:
    return [
        f"| {title} | {scores[key]['exact_match']:.2f} | {scores[key]['f1']:.2f} | |"
        for key, title in _JOB_STAGES
        if key in scores
    ]


def _transfer(transfer: dict[str, Any], titles: dict[str, str]) -> list[str]:
    """The hand-written transfer set: prose unlike the generated training data."""
    scores = transfer["runtimes"]
    base = scores.get(rt.TORCH_FP32, {}).get("f1")
    rows = [
        "### Transfer set",
        "",
        f"{transfer['examples']} hand-written questions over short prose paragraphs "
        "(`embedded:transfer-qa`, not generated), scored the same way.",
        "",
        "| runtime | EM | F1 | ΔF1 vs PyTorch FP32 |",
        "|---|---|---|---|",
    ]
    for key, value in scores.items():
        delta = "" if base is None else f"{value['f1'] - base:+.2f}"
        rows.append(f"| {titles[key]} | {value['exact_match']:.2f} | {value['f1']:.2f} | {delta} |")
    rows += _training_job_rows(transfer["training_job"])
    return [*rows, ""]


def _latency(report: dict[str, Any], titles: dict[str, str]) -> list[str]:
    latency = report["latency"]
    base = latency[rt.TORCH_FP32]
    rows = [
        "## Latency, batch 1",
        "",
        "| runtime | seq | p50 ms | p90 ms | p99 ms | p50 × |",
        "|---|---|---|---|---|---|",
    ]
    rows += _latency_rows(latency, base, titles)
    return [*rows, ""]


def _latency_rows(
    latency: dict[str, Any], base: dict[str, Any], titles: dict[str, str]
) -> list[str]:
    """One table row per runtime and sequence length, with p50 as a ratio to ``base``."""
    return [
        f"| {titles[key]} | {length} | {_ms(value['p50_ms'])} | {_ms(value['p90_ms'])} | "
        f"{_ms(value['p99_ms'])} | {_x(_div(value['p50_ms'], base[length]['p50_ms']))} |"
        for key, series in latency.items()
        for length, value in series.items()
    ]


def _throughput(report: dict[str, Any], titles: dict[str, str]) -> list[str]:
    data = report["throughput"]
    batched = data["batched_samples_per_second"]
    base = batched[rt.TORCH_FP32]
    rows = [
        "## Throughput",
        "",
        f"Batched: batch {data['batch_size']}, seq {data['sequence_length']}, sequential calls.",
        "",
        "| runtime | samples/s | × |",
        "|---|---|---|",
    ]
    rows += [f"| {titles[k]} | {v:.1f} | {_x(v / base)} |" for k, v in batched.items()]
    levels = sorted({int(n) for v in data["async"].values() for n in v["samples_per_second"]})
    rows += [
        "",
        "Concurrent async infer requests (OpenVINO THROUGHPUT hint, AsyncInferQueue, batch 1); "
        "× is to PyTorch FP32's batched throughput.",
        "",
        "| runtime | " + " | ".join(f"{n} in flight" for n in levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for key, value in data["async"].items():
        cells = [value["samples_per_second"].get(str(n)) for n in levels]
        rows.append(
            f"| {titles[key]} (streams {value['streams']}) | "
            + " | ".join("—" if c is None else f"{c:.1f} ({_x(c / base)})" for c in cells)
            + " |"
        )
    return [*rows, ""]


def _stages(report: dict[str, Any]) -> list[str]:
    """Where one request's time goes: each step of the service timed alone, beside the whole."""
    serving = report.get("serving") or {}
    stages = serving.get("stages")
    if not stages:
        return []
    from bench.run import SERVICE_RUNTIME

    steps = ("parse", "tokenize", "spans", "reply")
    rows = [
        "### Where a request's time goes",
        "",
        "p50 ms of each step the service takes for one question, timed alone with the functions "
        "the service calls (body parsing and validation, tokenization, span selection on the "
        "runtime's real logits, reply encoding), beside the raw runtime and the whole request. "
        "*Rest* is the HTTP p50 minus the in-process backend, parsing and reply: uvicorn, "
        "FastAPI, the thread hand-off and the client.",
        "",
        "| service | text tokens | "
        + " | ".join(steps)
        + " | its raw runtime | in-process | HTTP | rest |",
        "|---|---|" + "---|" * (len(steps) + 4),
    ]
    p50 = "p50_ms"
    for label, value in stages.items():
        cells = [_ms(value[name][p50]) for name in steps]
        for backend, key in SERVICE_RUNTIME.items():
            raw = serving["raw"].get(key, {}).get(label)
            alone = serving.get("in_process", {}).get(backend, {}).get(label)
            http = serving.get("http", {}).get(backend, {}).get("latency", {}).get(label)
            if not (raw and alone and http):
                continue
            rest = http[p50] - alone[p50] - value["parse"][p50] - value["reply"][p50]
            rows.append(
                f"| {backend} | {label} | "
                + " | ".join(cells)
                + f" | {_ms(raw[p50])} | {_ms(alone[p50])} | {_ms(http[p50])} | {_ms(rest)} |"
            )
    return [*rows, ""]


def _serving(report: dict[str, Any]) -> list[str]:
    serving = report.get("serving")
    if not serving:
        return ["## End to end", "", "Not measured in this run.", ""]
    raw, http, texts = serving["raw"], serving["http"], serving["texts"]
    rows = [
        "## End to end",
        "",
        "Each service is a real `python -m qatflow.serving` process on 127.0.0.1; one client sends "
        "one request at a time. *Raw* is the service's runtime called directly on the same "
        "windows; "
        "*in-process* is the service's backend called directly (tokenization and span selection "
        "included, HTTP excluded).",
        "",
        "| path | text tokens | windows | p50 ms | p90 ms | p99 ms | × raw runtime "
        "| × PyTorch FP32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    from bench.run import SERVICE_RUNTIME, service_capacity

    for label, text in texts.items():
        torch_p50 = raw[rt.TORCH_FP32][label]["p50_ms"]
        rows.append(
            f"| PyTorch FP32 eager, raw | {label} | {text['windows']} | "
            f"{_ms(torch_p50)} | {_ms(raw[rt.TORCH_FP32][label]['p90_ms'])} | "
            f"{_ms(raw[rt.TORCH_FP32][label]['p99_ms'])} | | 1.00× |"
        )
        for backend, key in SERVICE_RUNTIME.items():
            raw_p50 = raw[key][label]["p50_ms"]
            paths = [
                (f"{key}, raw", raw[key][label]),
                (f"{backend} backend, in-process", serving["in_process"][backend][label]),
                (f"{backend} service, HTTP", http[backend]["latency"][label]),
            ]
            for name, value in paths:
                rows.append(
                    f"| {name} | {label} | {text['windows']} | {_ms(value['p50_ms'])} | "
                    f"{_ms(value['p90_ms'])} | {_ms(value['p99_ms'])} | "
                    f"{_x(_div(value['p50_ms'], raw_p50))} | "
                    f"{_x(_div(value['p50_ms'], torch_p50))} |"
                )
        grpc = serving.get("grpc", {})
        if "latency" in grpc:
            value = grpc["latency"][label]
            rows.append(
                f"| gRPC client → OVMS stand-in (KServe v2) | {label} | {text['windows']} | "
                f"{_ms(value['p50_ms'])} | {_ms(value['p90_ms'])} | {_ms(value['p99_ms'])} | "
                f"{_x(_div(value['p50_ms'], raw[rt.OV_INT8][label]['p50_ms']))} | "
                f"{_x(_div(value['p50_ms'], torch_p50))} |"
            )
    batch_size = report["throughput"]["batch_size"]
    torch_rss = serving.get("pytorch_peak_rss_bytes")
    levels = sorted({int(n) for v in http.values() for n in v["concurrency"]})
    rows += [
        "",
        f"Concurrent clients, each sending the first text again as soon as it is answered, "
        "timed after two untimed rounds at the same concurrency: "
        f"requests/s (× the service's runtime alone at batch {batch_size}, its batched "
        "capacity, measured in the same process just before and after the levels, with the "
        "service idle), p50/p99 ms, and 503s (refused when every slot was busy). Settings: "
        + ", ".join(f"`{k}={v}`" for k, v in next(iter(http.values())).get("settings", {}).items())
        + ".",
        "",
        "| service | runtime's batched capacity | "
        + " | ".join(f"{n} client{'s' if n > 1 else ''}" for n in levels)
        + " | peak RSS (× PyTorch process) | start-up |",
        "|---|---|" + "---|" * (len(levels) + 2),
    ]
    for backend, value in http.items():
        capacity = service_capacity(report, backend)
        cells = []
        for n in levels:
            level = value["concurrency"].get(str(n), {})
            rate = level.get("throughput_rps")
            cells.append(
                "—"
                if rate is None
                else f"{rate:.1f}/s ({_x(_div(rate, capacity))}), {level['p50_ms']:.0f}/"
                f"{level['p99_ms']:.0f} ms, {level['refused_503']} × 503"
            )
        rss = value["peak_rss_bytes"]
        rows.append(
            f"| {backend} | {_ms(capacity)}/s | "
            + " | ".join(cells)
            + f" | {_mib(rss)} ({_x(_div(rss, torch_rss))}) | {value['startup_seconds']:.1f} s |"
        )
    grpc = serving.get("grpc", {})
    if "peak_rss_bytes" in grpc:
        rss = grpc["peak_rss_bytes"]
        rows.append(
            "| gRPC OVMS stand-in | | "
            + " | ".join("" for _ in levels)
            + f" | {_mib(rss)} ({_x(_div(rss, torch_rss))}) | |"
        )
    elif "skipped" in grpc:
        rows.append(f"\ngRPC: skipped ({grpc['skipped']})")
    client_cpu = [
        level["client_cpu_ms"]
        for value in http.values()
        for level in [*value["latency"].values(), *value["concurrency"].values()]
        if "client_cpu_ms" in level
    ]
    if client_cpu:
        rows.append(
            "\nThe HTTP load generator (`bench/http_load.py`: the request encoded once, one "
            "keep-alive connection per client) shares the cores with the service; it spent "
            f"{min(client_cpu):.2f}–{max(client_cpu):.2f} ms of CPU per request."
        )
    if torch_rss:
        rows.append(
            "\nPyTorch FP32 eager in a bare process (load + one inference): "
            f"peak RSS {_mib(torch_rss)}."
        )
    return [*rows, ""]


def _sizes(report: dict[str, Any]) -> list[str]:
    sizes = report["sizes"]
    base = sizes["pytorch_fp32"]
    names = {
        "pytorch_fp32": "PyTorch FP32 weights",
        "ir_fp32": "OpenVINO IR FP32",
        "ir_int8": "OpenVINO IR INT8",
        "onnx_fp32": "ONNX FP32",
        "onnx_int8": "ONNX INT8 (QDQ)",
    }
    rows = ["## Size on disk", "", "| form | size | × PyTorch FP32 |", "|---|---|---|"]
    rows += [f"| {names[k]} | {_mib(v)} | {_x(v / base)} |" for k, v in sizes.items()]
    rows.append(
        "\nThe QDQ ONNX keeps FP32 weights beside the quantize/dequantize pairs: no size win."
    )
    return [*rows, ""]


def _training(report: dict[str, Any]) -> list[str]:
    cost = report["training_cost"]
    rows = ["## Training cost", ""]
    fp32, qat = cost.get("fp32_training"), cost.get("qat_training")
    if fp32 and qat:
        rows.append(
            f"Step time at batch {cost.get('batch_size')}: FP32 fine-tuning "
            f"{fp32['seconds_per_step']:.3f} s, QAT {qat['seconds_per_step']:.3f} s "
            f"({cost['qat_vs_fp32_step_time']:.2f}× the FP32 step), from the training job's "
            "metrics.json."
        )
    else:
        rows.append("metrics.json holds no FP32 fine-tuning timing (fine-tuning was skipped).")
    return [*rows, ""]


def _bert_base(report: dict[str, Any]) -> list[str]:
    bert = report.get("bert_base")
    if not bert:
        return ["## BERT-base-sized model", "", "Not measured in this run.", ""]
    latency = bert["latency"]
    base = latency[rt.TORCH_FP32]
    rows = [
        "## BERT-base-sized model",
        "",
        f"{bert['config']['layers']} layers, {bert['config']['hidden']} hidden, "
        f"{bert['parameters_millions']}M parameters, random weights; INT8 through the training "
        "package's NNCF calibration and INT8 export. IR size FP32 "
        f"{_mib(bert['sizes']['ir_fp32'])}, INT8 {_mib(bert['sizes']['ir_int8'])} "
        f"({_x(bert['sizes']['ir_int8'] / bert['sizes']['ir_fp32'])}).",
        "",
        "| runtime | seq | p50 ms | p90 ms | p99 ms | p50 × |",
        "|---|---|---|---|---|---|",
    ]
    rows += _latency_rows(latency, base, titled(bert["runtimes"]))
    return [*rows, ""]


def plots(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    titles = titled(report["runtimes"])

    # Latency percentiles per runtime, one panel per sequence length (BERT-base panels after).
    panels = [
        (f"default model, seq {n}", {titles[k]: v[n] for k, v in report["latency"].items()})
        for n in next(iter(report["latency"].values()))
    ]
    if report.get("bert_base"):
        bert = report["bert_base"]
        panels += [
            (
                f"BERT-base, seq {n}",
                {titled(bert["runtimes"])[k]: v[n] for k, v in bert["latency"].items()},
            )
            for n in next(iter(bert["latency"].values()))
        ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8), squeeze=False)
    for axis, (title, series) in zip(axes[0], panels, strict=True):
        names = list(series)
        positions = range(len(names))
        for offset, (field, label) in enumerate(
            (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"))
        ):
            axis.bar(
                [p + (offset - 1) * 0.27 for p in positions],
                [series[n][field] for n in names],
                width=0.27,
                label=label,
            )
        axis.set_xticks(list(positions), names, rotation=35, ha="right", fontsize=7)
        axis.set_ylabel("ms")
        axis.set_title(title)
        axis.legend(fontsize=7)
    figure.tight_layout()
    written.append(_save(figure, out / "latency.png"))

    # Throughput vs concurrency: the runtime alone and each service.
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, value in report["throughput"]["async"].items():
        points = sorted((int(n), v) for n, v in value["samples_per_second"].items())
        axis.plot(*zip(*points, strict=True), marker="o", label=f"{titles[key]} alone (async)")
    for backend, value in (report.get("serving") or {}).get("http", {}).items():
        points = sorted(
            (int(n), v["throughput_rps"])
            for n, v in value["concurrency"].items()
            if "throughput_rps" in v
        )
        if points:
            axis.plot(*zip(*points, strict=True), marker="s", label=f"{backend} service (HTTP)")
    axis.axhline(
        report["throughput"]["batched_samples_per_second"][rt.TORCH_FP32],
        color="grey",
        linestyle="--",
        label=f"PyTorch FP32 batch {report['throughput']['batch_size']}",
    )
    axis.set_xticks(
        sorted(
            {
                int(n)
                for v in report["throughput"]["async"].values()
                for n in v["samples_per_second"]
            }
        )
    )
    axis.set_xlabel("concurrent requests")
    axis.set_ylabel("samples/s (seq 128)")
    axis.set_title("Throughput vs concurrency")
    axis.legend(fontsize=7)
    figure.tight_layout()
    written.append(_save(figure, out / "throughput.png"))

    serving = (report.get("serving") or {}).get("http", {})
    if serving:
        written.append(_serving_plot(report, serving, out / "serving.png"))

    # Accuracy FP32 vs INT8 through each runtime.
    scores = report["accuracy"]["runtimes"]
    names = [titles[k] for k in scores]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    positions = range(len(names))
    axis.bar(
        [p - 0.2 for p in positions], [v["exact_match"] for v in scores.values()], 0.4, label="EM"
    )
    axis.bar([p + 0.2 for p in positions], [v["f1"] for v in scores.values()], 0.4, label="F1")
    axis.set_xticks(list(positions), names, rotation=30, ha="right", fontsize=7)
    axis.set_ylim(0, 100)
    axis.set_title(f"Accuracy on {report['accuracy']['eval_examples']} eval examples")
    axis.legend()
    figure.tight_layout()
    written.append(_save(figure, out / "accuracy.png"))
    return written


def _serving_plot(report: dict[str, Any], http: dict[str, Any], path: Path) -> Path:
    """Each service's requests/s against its runtime's batched capacity, and p50/p99, by
    concurrent clients."""
    import matplotlib.pyplot as plt

    from bench.run import SERVICE_RUNTIME, service_capacity

    figure, (rates, latencies) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, (backend, value) in enumerate(http.items()):
        color = f"C{index}"
        levels = sorted(
            (int(n), v) for n, v in value["concurrency"].items() if "throughput_rps" in v
        )
        if not levels:
            continue
        clients = [n for n, _ in levels]
        rates.plot(
            clients, [v["throughput_rps"] for _, v in levels], "o-", color=color, label=backend
        )
        capacity = service_capacity(report, backend)
        if capacity:
            rates.axhline(
                capacity,
                color=color,
                linestyle="--",
                label=f"{SERVICE_RUNTIME[backend]} batch {report['throughput']['batch_size']}",
            )
        latencies.plot(
            clients, [v["p50_ms"] for _, v in levels], "o-", color=color, label=f"{backend} p50"
        )
        latencies.plot(
            clients, [v["p99_ms"] for _, v in levels], "s:", color=color, label=f"{backend} p99"
        )
    for axis, title, unit in (
        (rates, "Service throughput vs the runtime's batched capacity", "requests/s"),
        (latencies, "Latency under concurrency", "ms"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients (128-token text)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write(report: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text("# Benchmark report\n\n" + markdown(report), encoding="utf-8")
    for path in plots(report, out):
        paths[path.stem] = path
    return paths


def update_docs(docs: Path, summary: str) -> None:
    """Replace the latest-run section of the docs page, keeping the hand-written text around it."""
    text = docs.read_text(encoding="utf-8") if docs.is_file() else f"{DOCS_BEGIN}\n{DOCS_END}\n"
    if DOCS_BEGIN not in text or DOCS_END not in text:
        text = f"{text.rstrip()}\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    head, rest = text.split(DOCS_BEGIN, 1)
    tail = rest.split(DOCS_END, 1)[1]
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(f"{head}{DOCS_BEGIN}\n{summary}{DOCS_END}{tail}", encoding="utf-8")
