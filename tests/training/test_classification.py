"""The real pipeline on a tiny model, for text classification: what it publishes and refuses."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from qatflow.core import artifacts
from qatflow.training.classification import TextClassificationTask, classification_scores
from qatflow.training.config import TrainingSettings
from qatflow.training.pipeline import TrainingError, run_pipeline
from qatflow.training.synthetic_classification import generate_paraphrase
from tests.conftest import TINY_CLASSIFIER_NAME, tiny_classifier_overrides

pytestmark = pytest.mark.slow


def _settings(model_dir: Path, output_dir: Path, **changes: object) -> TrainingSettings:
    overrides = {**tiny_classifier_overrides(model_dir, output_dir), **changes}
    return TrainingSettings.load(overrides=overrides, environ={})


def test_published_classifier_is_complete_and_verified(published_classifier):
    artifacts.verify(published_classifier)
    manifest = published_classifier.manifest
    assert published_classifier.name == TINY_CLASSIFIER_NAME
    assert manifest["task"] == "text-classification"
    assert manifest["precision"] == "int8"
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["outputs"] == ["logits"]
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["text_pair"] is False
    assert manifest["max_seq_length"] == 128
    for required in ("openvino_model.xml", "onnx/model.onnx", "config.json", "tokenizer.json"):
        assert required in manifest["files"]
    metrics = published_classifier.metrics()
    for stage in ("fp32", "ptq", "int8"):
        assert set(manifest["metrics"][stage]) == {"accuracy", "f1", "samples"}
        assert metrics[stage] == manifest["metrics"][stage]
        assert metrics[stage]["samples"] == 200
        assert 0 <= metrics[stage]["f1"] <= 100
    # Learnt something: the tiny model beats always answering one class.
    assert metrics["fp32"]["accuracy"] > 56
    assert metrics["int8"]["accuracy"] > 56


def test_ir_and_onnx_are_int8_and_label_names_travel_with_the_config(published_classifier):
    import onnx
    import openvino as ov
    from transformers import AutoConfig

    ops = ov.Core().read_model(published_classifier.ir_path).get_ordered_ops()
    assert sum(op.get_type_name() == "FakeQuantize" for op in ops) > 10
    graph = onnx.load(str(published_classifier.onnx_path)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    assert [output.name for output in graph.output] == ["logits"]
    config = AutoConfig.from_pretrained(published_classifier.path)
    assert config.id2label == {0: "negative", 1: "positive"}


def test_ir_and_qat_torch_model_predict_the_same_classes(published_classifier):
    """The exported IR is the QAT model: the same class on (nearly) every evaluation example."""
    from qatflow.training import export, quantization

    settings = TrainingSettings.load(
        overrides=published_classifier.metrics()["settings"], environ={}
    )
    tokenizer = AutoTokenizer.from_pretrained(published_classifier.path)
    task = TextClassificationTask(settings, tokenizer)
    model, _ = task.load_model(str(settings.scratch_dir / f"{TINY_CLASSIFIER_NAME}-fp32"))
    quantized = quantization.load_checkpoint(
        model, settings.scratch_dir / f"{TINY_CLASSIFIER_NAME}-qat.pt"
    )
    torch_logits = task.predict(export.torch_infer(quantized, task.output_names), 32)
    ir_logits = task.predict(export.openvino_infer(published_classifier.ir_path), 32)
    agreement = np.mean(torch_logits.argmax(-1) == ir_logits.argmax(-1))
    assert agreement >= 0.97
    assert np.abs(torch_logits - ir_logits).mean() < 0.1


def test_scores_accuracy_and_positive_class_f1():
    scores = classification_scores(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1]), 2)
    assert scores == {"accuracy": 50.0, "samples": 4, "f1": 50.0}
    three = classification_scores(np.array([2, 1, 0]), np.array([2, 1, 1]), 3)
    assert set(three) == {"accuracy", "samples"}
    assert three["accuracy"] == pytest.approx(200 / 3)


def test_sentence_pairs_from_local_csv_publish_a_pair_classifier(tiny_classifier_dir, tmp_path):
    """MRPC-style CSV files (sentence1, sentence2, label names) through the real pipeline."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    names = {0: "not_equivalent", 1: "equivalent"}
    for split, count in (("train", 200), ("validation", 40)):
        with (data_dir / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence1", "sentence2", "label"])
            for example in generate_paraphrase(split, count, 3):
                writer.writerow([example.text, example.text_pair, names[example.label]])
    settings = _settings(
        tiny_classifier_dir,
        tmp_path / "models",
        dataset=str(data_dir),
        model_name="tiny-pairs",
        epochs=1.0,
        max_train_samples=None,
        max_eval_samples=None,
    )
    version = run_pipeline(settings)
    artifacts.verify(version)
    assert version.manifest["text_pair"] is True
    # Names get sorted ids, so "equivalent" is 0 here and F1 counts "not_equivalent".
    assert version.manifest["labels"] == ["equivalent", "not_equivalent"]
    assert version.metrics()["int8"]["samples"] == 40
    assert set(version.metrics()["int8"]) == {"accuracy", "f1", "samples"}


def test_a_data_error_fails_the_run_and_publishes_nothing(tiny_classifier_dir, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for split in ("train", "validation"):
        (data_dir / f"{split}.jsonl").write_text('{"review": "fine", "label": 1}\n')
    settings = _settings(tiny_classifier_dir, tmp_path / "models", dataset=str(data_dir))
    with pytest.raises(TrainingError, match="no text column; set text_column"):
        run_pipeline(settings)
    assert not (tmp_path / "models" / TINY_CLASSIFIER_NAME).exists()


def _train(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qatflow.training", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_exit_codes_for_bad_settings_and_bad_data(tiny_classifier_dir, tmp_path):
    bad_setting = _train("--set", "task=sentiment", "--output-dir", str(tmp_path))
    assert bad_setting.returncode == 2
    assert "task" in bad_setting.stderr + bad_setting.stdout
    bad_data = _train(
        "--set",
        "task=text-classification",
        "--set",
        f"model_name_or_path={tiny_classifier_dir}",
        "--set",
        "dataset=embedded:synthetic-reviews",
        "--output-dir",
        str(tmp_path),
    )
    assert bad_data.returncode == 1
    assert "unknown embedded data set 'embedded:synthetic-reviews'" in bad_data.stdout
