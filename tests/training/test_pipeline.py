"""The real pipeline on a tiny model: what it publishes, and what it refuses to publish."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qatflow.core import artifacts, qa
from qatflow.core.outcome import EXIT_BAD_CONFIG, TrainingOutcome
from qatflow.training.config import TrainingSettings
from qatflow.training.pipeline import AccuracyGateError, run_pipeline
from tests.conftest import tiny_training_overrides

pytestmark = pytest.mark.slow


def test_published_version_is_complete_and_verified(published_model):
    artifacts.verify(published_model)
    manifest = published_model.manifest
    assert manifest["task"] == "question-answering"
    assert manifest["precision"] == "int8"
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["outputs"] == ["start_logits", "end_logits"]
    for required in (
        "openvino_model.xml",
        "openvino_model.bin",
        "onnx/model.onnx",
        "config.json",
        "tokenizer.json",
        "metrics.json",
    ):
        assert required in manifest["files"]
    assert set(manifest["libraries"]) >= {"torch", "nncf", "openvino", "transformers"}
    metrics = published_model.metrics()
    for stage in ("fp32", "ptq", "int8"):
        assert set(metrics[stage]) == {"exact_match", "f1", "samples"}
        assert metrics[stage]["samples"] == 60
        # the hand-written transfer set, scored beside the held-out split at every stage
        assert set(metrics["transfer"][stage]) == {"exact_match", "f1", "samples"}
        assert metrics["transfer"][stage]["samples"] == 80
    assert manifest["metrics"]["transfer"] == metrics["transfer"]
    assert metrics["timings"]["qat_training"]["seconds_per_step"] > 0


def test_ir_is_int8_and_runs_in_optimum(published_model):
    import openvino as ov
    from optimum.intel import OVModelForQuestionAnswering

    ops = ov.Core().read_model(published_model.ir_path).get_ordered_ops()
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 10
    assert any(
        op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i8
        for op in ops
    )
    model = OVModelForQuestionAnswering.from_pretrained(published_model.path)
    tokenizer = AutoTokenizer.from_pretrained(published_model.path)
    inputs = tokenizer("where was rosa born ?", "rosa was born in tarnow .", return_tensors="np")
    outputs = model(**inputs)
    assert outputs.start_logits.shape == inputs["input_ids"].shape


def test_each_quantized_tensor_has_one_fake_quantize(published_model):
    """Q, K and V read one LayerNorm output: after QAT the IR still quantizes it once (three
    FakeQuantize ops of slightly different ranges could not fuse)."""
    import openvino as ov

    ops = ov.Core().read_model(published_model.ir_path).get_ordered_ops()
    inputs = Counter(
        (op.input_value(0).get_node().get_friendly_name(), op.input_value(0).get_index())
        for op in ops
        if op.get_type_name() == "FakeQuantize"
    )
    assert inputs and max(inputs.values()) == 1, [name for name, n in inputs.items() if n > 1]
    assert published_model.metrics()["ir"]["fake_quantize"] == len(inputs)


def test_quantizers_of_one_tensor_stay_one_through_a_checkpoint(tiny_model_dir, tmp_path):
    import nncf.torch
    import torch
    from transformers import BertForQuestionAnswering

    from qatflow.training import quantization

    generator = torch.Generator().manual_seed(0)
    samples = [
        {
            "input_ids": torch.randint(5, 100, (1, 32), generator=generator),
            "attention_mask": torch.ones(1, 32, dtype=torch.long),
            "token_type_ids": torch.zeros(1, 32, dtype=torch.long),
        }
        for _ in range(4)
    ]
    model = BertForQuestionAnswering.from_pretrained(tiny_model_dir)
    quantized = quantization.calibrate(model, samples)
    config = nncf.torch.get_config(quantized)
    shared = [
        command["hook_names_in_model"]
        for command in config["compression_state"]
        if command["module_cls_name"].endswith("Quantizer")
        and len(command["hook_names_in_model"]) > 1
    ]
    # One input quantizer for the query, key and value projections of each layer.
    assert len(shared) == model.config.num_hidden_layers
    for names in shared:
        projections = sorted(name.split("/self/")[1].split("/")[0] for name in names)
        assert projections == ["key", "query", "value"]
    path = tmp_path / "qat.pt"
    quantization.save_checkpoint(quantized, path)
    restored = quantization.load_checkpoint(
        BertForQuestionAnswering.from_pretrained(tiny_model_dir), path
    )
    assert nncf.torch.get_config(restored) == config
    with torch.no_grad():
        assert torch.equal(
            restored(**samples[0]).start_logits, quantized(**samples[0]).start_logits
        )


def test_the_onnx_export_fills_no_log_with_trace_warnings(tiny_model_dir, tmp_path):
    import torch
    from transformers import BertForQuestionAnswering

    from qatflow.training import quantization
    from qatflow.training.export import export_onnx

    sample = {
        "input_ids": torch.arange(5, 37).reshape(1, 32),
        "attention_mask": torch.ones(1, 32, dtype=torch.long),
        "token_type_ids": torch.zeros(1, 32, dtype=torch.long),
    }
    model = quantization.calibrate(
        BertForQuestionAnswering.from_pretrained(tiny_model_dir), [sample]
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        export_onnx(model, sample, ["start_logits", "end_logits"], tmp_path)
    assert [str(w.message) for w in seen if w.category is torch.jit.TracerWarning] == []


def test_onnx_is_qdq_and_matches_the_ir_on_the_openvino_ep(published_model):
    import onnx
    import onnxruntime
    import openvino as ov

    ops = {node.op_type for node in onnx.load(str(published_model.onnx_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = onnxruntime.InferenceSession(
        str(published_model.onnx_path), providers=["OpenVINOExecutionProvider"]
    )
    assert session.get_providers()[0] == "OpenVINOExecutionProvider"
    tokenizer = AutoTokenizer.from_pretrained(published_model.path)
    features = qa.encode(
        tokenizer,
        ["where was rosa born ?"],
        ["rosa was born in tarnow ."],
        max_length=96,
        doc_stride=32,
    )
    arrays = qa.pad(features, tokenizer.pad_token_id)
    onnx_start, _ = session.run(["start_logits", "end_logits"], arrays)
    compiled = ov.Core().compile_model(
        published_model.ir_path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    ir_start = compiled(arrays)["start_logits"]
    assert np.abs(onnx_start - ir_start).max() < 0.5


def test_failed_accuracy_gate_publishes_nothing(tiny_model_dir, tmp_path, monkeypatch):
    from qatflow.training import export

    real_infer = export.openvino_infer

    def full_stop_ir(path, config=None):
        """The real exported IR with its answers moved to each context's closing ".": F1 0."""
        infer = real_infer(path, config)

        def answer_the_full_stop(arrays):
            start, end = infer(arrays)
            last = arrays["attention_mask"].sum(axis=1) - 2  # the token before the final [SEP]
            rows = np.arange(len(last))
            start[rows, last] = end[rows, last] = 1e4
            return [start, end]

        return answer_the_full_stop

    monkeypatch.setattr(export, "openvino_infer", full_stop_ir)
    # the fixture's settings: a model whose FP32 F1 is above 0, so an INT8 F1 of 0 fails the gate
    overrides = {**tiny_training_overrides(tiny_model_dir, tmp_path), "accuracy_tolerance": 0.0}
    with pytest.raises(AccuracyGateError, match="below FP32") as refused:
        run_pipeline(TrainingSettings.load(overrides=overrides, environ={}))
    # What the training command reports as its outcome: the gate's metric and the summary.
    assert refused.value.metrics["accuracy_gate"] == {"metric": "f1", "tolerance": 0.0}
    assert refused.value.metrics["summary"].startswith("qat | baseline f1 ")
    assert artifacts.find_latest(tmp_path) is None
    assert list((tmp_path / artifacts.STAGING).iterdir()) == []


def _killable_overrides(model_dir: Path, output_dir: Path) -> dict[str, object]:
    return {
        **tiny_training_overrides(model_dir, output_dir),
        "max_train_samples": 100,
        "epochs": 1.0,
        "qat_epochs": 0.1,
    }


def test_killed_run_leaves_no_version_and_a_rerun_publishes(tiny_model_dir, tmp_path):
    # Killed after export: a complete model sits in staging, the worst moment to die.
    command = [sys.executable, "-m", "qatflow.training"]
    for key, value in _killable_overrides(tiny_model_dir, tmp_path).items():
        command += ["--set", f"{key}={value}"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 600
    assert process.stdout is not None
    for line in process.stdout:
        if "[8/9] INT8 evaluation" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    staged = list((tmp_path / artifacts.STAGING).iterdir())
    assert staged and (staged[0] / "openvino_model.xml").is_file()  # it died with a full model
    assert artifacts.find_latest(tmp_path) is None
    # The rerun, as the chart's Job runs it: the outcome goes to the termination-message file.
    outcome_file = tmp_path / "termination-log"
    rerun = subprocess.run(
        [*command, "--outcome-file", str(outcome_file)], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:]
    version = artifacts.find_latest(tmp_path)
    assert version is not None and version.version == 1
    artifacts.verify(version)
    reported = TrainingOutcome.from_json(outcome_file.read_text())
    assert reported is not None and reported.published
    assert (reported.model, reported.version, reported.task) == (version.name, 1, version.task)
    assert reported.message == f"published {version.name} version 1 to {version.path}"
    metrics = version.metrics()
    assert reported.metric == "f1"
    assert reported.scores == {stage: metrics[stage]["f1"] for stage in reported.scores}
    assert set(reported.scores) == {"baseline", "fp32", "ptq", "int8"}
    assert reported.summary == metrics["summary"]
    assert f"summary: {reported.summary}" in rerun.stdout


def test_bad_configuration_exits_2_with_a_one_line_reason(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qatflow.training",
            "--set",
            "epochz=1",
            "--output-dir",
            str(tmp_path),
            "--outcome-file",
            str(tmp_path / "outcome"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == EXIT_BAD_CONFIG
    assert "unknown setting 'epochz'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    reported = TrainingOutcome.from_json((tmp_path / "outcome").read_text())
    assert reported is not None and reported.exit_code == EXIT_BAD_CONFIG
    assert reported.message.startswith("configuration error: ")
    assert reported.message in result.stdout  # the same words as the log's last line


def test_missing_data_exits_non_zero_with_the_path(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qatflow.training",
            "--set",
            f"dataset={tmp_path}/nowhere.json",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "nowhere.json" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_local_squad_files_are_read(tmp_path):
    from qatflow.training.data_sources import DataError
    from qatflow.training.qa_data import load_examples

    nested = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "Rosa was born in Tarnow.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where was Rosa born?",
                                "answers": [{"text": "Tarnow", "answer_start": 17}],
                            }
                        ],
                    }
                ]
            }
        ]
    }
    (tmp_path / "train.json").write_text(json.dumps(nested))
    (tmp_path / "validation.jsonl").write_text(
        json.dumps(
            {
                "id": "q2",
                "question": "Who?",
                "context": "Rosa.",
                "answers": {"text": ["Rosa"], "answer_start": [0]},
            }
        )
        + "\n"
    )
    [train] = load_examples(str(tmp_path), "train", config=None, limit=None, seed=0)
    assert (train.question, train.answers, train.answer_starts) == (
        "Where was Rosa born?",
        ["Tarnow"],
        [17],
    )
    [evaluation] = load_examples(str(tmp_path), "validation", config=None, limit=None, seed=0)
    assert evaluation.answers == ["Rosa"]
    (tmp_path / "test.jsonl").write_text(
        json.dumps(
            {
                "question": "Who?",
                "context": "Rosa.",
                "answers": {"text": ["Anna"], "answer_start": [0]},
            }
        )
        + "\n"
    )
    with pytest.raises(DataError, match="not at 0"):
        load_examples(str(tmp_path), "test", config=None, limit=None, seed=0)
