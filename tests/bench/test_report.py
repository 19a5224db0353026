"""The benchmark harness end to end on the tiny published model: every section of the report is
there and well-formed. Timings are not asserted; they belong to the report, not to a test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.cli import EXIT_BAD_INPUT, EXIT_OK, main
from bench.measure import text_of_tokens
from bench.run import SERVICE_RUNTIME
from bench.sources import Sources, _fp32_source

from bench import report as reporting
from bench import runtimes
from qatflow.core.backends import SERVING_BACKENDS
from qatflow.core.precision import openvino_cpu_plugin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PERCENTILES = ("p50_ms", "p90_ms", "p99_ms")
ALL_RUNTIMES = {
    runtimes.TORCH_FP32,
    runtimes.OV_FP32,
    runtimes.OV_DEFAULT,
    runtimes.OV_INT8,
    runtimes.ORT_OV_INT8,
    runtimes.ORT_CPU_INT8,
}


def test_every_serving_backend_is_compared_with_its_raw_runtime():
    assert set(SERVICE_RUNTIME) == set(SERVING_BACKENDS)
    assert set(SERVICE_RUNTIME.values()) <= ALL_RUNTIMES


def _ordered(series: dict[str, float]) -> bool:
    return 0 < series["p50_ms"] <= series["p90_ms"] <= series["p99_ms"]


@pytest.fixture(scope="module")
def quick_run(published_model, tmp_path_factory):
    """One ``python -m bench --quick`` run, shrunk further, on the fixture's published model."""
    root = tmp_path_factory.mktemp("bench")
    docs = root / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nWritten by hand.\n", encoding="utf-8")
    argv = [
        "--models-dir", str(published_model.path.parent.parent),
        "--model", published_model.name,
        "--quick",
        "--iterations", "3",
        "--concurrency", "1,2",
        "--requests", "4",
        "--service-set", "batch_max_delay_ms=1",
        "--out", str(root / "reports"),
        "--docs", str(docs),
    ]  # fmt: skip
    code = main(argv)
    report = json.loads((root / "reports" / "report.json").read_text(encoding="utf-8"))
    return code, report, root


@pytest.mark.slow
def test_quick_run_succeeds_and_describes_the_machine(quick_run):
    code, report, _ = quick_run
    assert code == EXIT_OK
    machine = report["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1
    assert {"avx2", "avx512_vnni", "amx_int8"} <= set(machine["isa"])
    assert {"torch", "openvino", "onnxruntime-openvino", "nncf"} <= set(machine["libraries"])
    assert report["model"]["fp32_origin"] == "fp32_model_dir"


@pytest.mark.slow
def test_every_runtime_is_scored_and_timed(quick_run):
    _, report, _ = quick_run
    # The INT8-at-f32 / INT8-at-bf16 row pair exists on CPUs that compute bf16 only.
    bf16_pair = {runtimes.OV_INT8_F32, runtimes.OV_INT8_BF16}
    scored = ALL_RUNTIMES | (bf16_pair if "BF16" in openvino_cpu_plugin().capabilities else set())
    assert set(report["runtimes"]) == {*scored, runtimes.OV_INT8_STATIC}
    assert report["runtimes"][runtimes.OV_FP32]["inference_precision"] == "f32"
    scores = report["accuracy"]["runtimes"]
    assert set(scores) == scored
    assert all(0 <= s["f1"] <= 100 and 0 <= s["exact_match"] <= 100 for s in scores.values())
    assert {"fp32", "ptq", "int8"} <= set(report["accuracy"]["training_job"])
    transfer = report["accuracy"]["transfer"]  # the hand-written set, through every runtime too
    assert transfer["examples"] == 80 and set(transfer["runtimes"]) == scored
    assert {"fp32", "ptq", "int8"} <= set(transfer["training_job"])
    for series in report["latency"].values():
        assert set(series) == {"128"}
        assert _ordered(series["128"])
    assert set(report["throughput"]["batched_samples_per_second"]) == scored
    for result in report["throughput"]["async"].values():
        assert set(result["samples_per_second"]) == {"1", "2"}


@pytest.mark.slow
def test_services_are_measured_end_to_end(quick_run):
    _, report, _ = quick_run
    serving = report["serving"]
    assert set(serving["http"]) == set(SERVING_BACKENDS)
    for backend in serving["http"].values():
        assert _ordered(backend["latency"]["128"])
        assert backend["latency"]["128"]["answer"]["answer"] is not None
        assert backend["peak_rss_bytes"] > 50 * 2**20
        assert set(backend["concurrency"]) == {"1", "2"}
        # The settings chosen on the command line are the ones the report names.
        assert backend["settings"]["batch_max_delay_ms"] == 1.0
        assert backend["settings"]["batching"] is True
        assert all(
            level["requests"] + level["refused_503"] == 4
            for level in backend["concurrency"].values()
        )
        # Its runtime's capacity, measured beside it, is what its throughput is compared with.
        before, after = backend["capacity_runs"]
        assert before > 0 and after > 0
        assert backend["capacity_samples_per_second"] == pytest.approx((before + after) / 2)
    assert _ordered(serving["grpc"]["latency"]["128"])
    assert serving["grpc"]["peak_rss_bytes"] > 0
    # The service's own steps, each timed alone, on the same text.
    assert set(serving["stages"]) == {"128"}
    stages = serving["stages"]["128"]
    assert set(stages) == {"parse", "tokenize", "spans", "reply"}
    assert all(_ordered(step) for step in stages.values())


@pytest.mark.slow
def test_sizes_training_cost_and_targets(quick_run):
    _, report, _ = quick_run
    sizes = report["sizes"]
    assert set(sizes) == {"pytorch_fp32", "ir_fp32", "ir_int8", "onnx_fp32", "onnx_int8"}
    assert sizes["ir_int8"] < sizes["ir_fp32"]
    assert report["training_cost"]["qat_vs_fp32_step_time"] > 0
    assert "bert_base" not in report  # --quick leaves it out
    names = [item["target"] for item in report["targets"]]
    assert any("INT8 IR size" in name for name in names)
    assert any("HTTP p50 vs its raw runtime" in name for name in names)
    assert all(item["met"] in (True, False, None) for item in report["targets"])


@pytest.mark.slow
def test_markdown_plots_and_docs_are_written(quick_run):
    _, _, root = quick_run
    text = (root / "reports" / "report.md").read_text(encoding="utf-8")
    for heading in (
        "## Targets",
        "## Accuracy",
        "### Transfer set",
        "## Latency",
        "## Throughput",
        "## End to end",
        "### Where a request's time goes",
        "## Size on disk",
        "## Training cost",
    ):
        assert heading in text
    for plot in ("latency", "throughput", "serving", "accuracy"):
        assert (root / "reports" / f"{plot}.png").read_bytes().startswith(PNG_MAGIC)
    docs = (root / "benchmarks.md").read_text(encoding="utf-8")
    assert docs.startswith("# Benchmarks\n\nWritten by hand.")
    assert reporting.DOCS_BEGIN in docs and "## Targets" in docs


def test_missing_models_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["--models-dir", str(tmp_path / "absent"), "--no-docs"]) == EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("assignment", "says"),
    [
        ("batch_max_delay_ms=-1", "batch_max_delay_ms"),
        ("no_such_setting=1", "no_such_setting"),
        ("max_concurrency=4", "chosen by the bench"),
        ("batch_max_delay_ms", "key=value"),
    ],
)
def test_a_bad_service_setting_is_a_clear_error(tmp_path, capsys, assignment, says):
    argv = ["--models-dir", str(tmp_path), "--service-set", assignment, "--no-docs"]
    assert main(argv) == EXIT_BAD_INPUT
    out = capsys.readouterr().out
    assert "--service-set" in out and says in out


def test_empty_models_dir_is_a_clear_error(tmp_path, capsys):
    code = main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--no-docs"])
    assert code == EXIT_BAD_INPUT
    assert "no published model" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_docs_section_is_replaced_not_appended(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Title\n\nIntro.\n", encoding="utf-8")
    reporting.update_docs(docs, "first run\n")
    reporting.update_docs(docs, "second run\n")
    text = docs.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nIntro.\n")
    assert "second run" in text and "first run" not in text


def test_text_of_tokens_fills_the_requested_window(tiny_model_dir):
    from transformers import AutoTokenizer

    from qatflow.training import synthetic_qa

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = synthetic_qa.generate("validation", 5, 0)
    question, context = text_of_tokens(tokenizer, examples, 100)
    tokens = len(tokenizer(question, context)["input_ids"])
    assert 95 <= tokens <= 100


def test_fp32_source_falls_back_to_the_source_model(published_model, tmp_path):
    notes: list[str] = []
    directory, origin = _fp32_source(published_model, {}, tmp_path, notes)
    assert directory == published_model.manifest["source_model"]
    assert origin.startswith("source_model")
    assert "untrained" in notes[0]
    assert isinstance(Sources, type) and Path(directory).is_dir()
