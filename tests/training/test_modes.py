"""Compression modes on the tiny model: distillation, distillation + QAT and sparsity, each run
through the real pipeline to a published INT8 version; presets; the device choice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from qatflow.core import artifacts
from qatflow.training import distillation, sparsity
from qatflow.training.config import TrainingSettings
from qatflow.training.loop import fine_tune
from qatflow.training.pipeline import TrainingError, run_pipeline
from qatflow.training.presets import names, path
from qatflow.training.question_answering import QuestionAnsweringTask
from tests.conftest import tiny_training_overrides

STAGES = ("baseline", "fp32", "ptq", "int8")


def _settings(model_dir: Path, output_dir: Path, **overrides: object) -> TrainingSettings:
    values = tiny_training_overrides(model_dir, output_dir)
    # Smaller than the shared fixture's run: these tests check the modes' plumbing.
    values.update(max_train_samples=160, max_eval_samples=30, epochs=1.0)
    values.update(overrides)
    return TrainingSettings.load(overrides=values, environ={})


def _fake_quantize_ops(version: artifacts.ModelVersion) -> int:
    import openvino as ov

    ops = ov.Core().read_model(version.ir_path).get_ordered_ops()
    return sum(op.get_type_name() == "FakeQuantize" for op in ops)


@pytest.mark.slow
def test_distillation_qat_publishes_a_smaller_int8_student(tiny_model_dir, tmp_path):
    version = run_pipeline(
        _settings(
            tiny_model_dir,
            tmp_path,
            mode="distillation_qat",
            student_layers=1,
            model_name="tiny-distilled",
        )
    )
    assert version is not None
    artifacts.verify(version)
    assert version.manifest["mode"] == "distillation_qat"
    assert set(version.manifest["metrics"]) == {*STAGES, "transfer"}
    metrics = version.metrics()
    assert metrics["baseline_model"] == "the teacher"
    for stage in STAGES:
        assert set(metrics[stage]) == {"exact_match", "f1", "samples"}
    # the teacher, the student and both INT8 models on the hand-written set too
    assert set(metrics["transfer"]) == set(STAGES)
    student = metrics["student"]
    assert (student["layers"], student["teacher_layers"]) == (1, 2)
    assert student["parameters"] < student["teacher_parameters"]
    # No teacher_model: the job fine-tuned one, distilled, then ran QAT with the teacher.
    assert {"teacher_training", "distillation_training", "qat_training"} <= set(metrics["timings"])
    assert _fake_quantize_ops(version) > 0
    assert version.path.joinpath("config.json").read_text().count('"num_hidden_layers": 1') == 1


@pytest.mark.slow
def test_distillation_from_a_given_teacher_publishes_post_training_int8(
    published_model, tiny_model_dir, tmp_path
):
    teacher = published_model.metrics()["fp32_model_dir"]
    version = run_pipeline(
        _settings(
            tiny_model_dir,
            tmp_path,
            mode="distillation",
            teacher_model=teacher,
            student_layers=1,
            model_name="tiny-student",
            transfer_eval=False,
        )
    )
    assert version is not None
    metrics = version.metrics()
    assert "transfer" not in metrics and "transfer" not in version.manifest["metrics"]
    assert "teacher_training" not in metrics["timings"]
    assert "qat_training" not in metrics["timings"]  # distillation alone: PTQ INT8
    assert metrics["baseline_model"] == "the teacher"
    assert metrics["baseline"]["samples"] == 30
    assert _fake_quantize_ops(version) > 0


def test_teacher_without_a_trained_head_is_refused(tiny_classifier_dir, tiny_model_dir, tmp_path):
    # The tiny classifier folder holds an encoder only: no question-answering head to learn from.
    settings = _settings(
        tiny_model_dir,
        tmp_path,
        mode="distillation",
        teacher_model=str(tiny_classifier_dir),
        max_train_samples=20,
    )
    with pytest.raises(TrainingError, match="has no trained question-answering head"):
        run_pipeline(settings)
    assert not (tmp_path / "tiny-qa").exists()


@pytest.mark.slow
def test_distillation_brings_the_student_closer_to_the_teacher(published_model, tiny_model_dir):
    torch.manual_seed(0)
    settings = _settings(tiny_model_dir, Path("unused"), max_train_samples=120)
    task = QuestionAnsweringTask(settings, AutoTokenizer.from_pretrained(tiny_model_dir))
    teacher = AutoModelForQuestionAnswering.from_pretrained(
        published_model.metrics()["fp32_model_dir"]
    )
    student = distillation.shrink(AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir), 1)
    loss = distillation.DistillationLoss(
        teacher,
        input_names=list(task.example_inputs()),
        output_names=task.output_names,
        temperature=2.0,
        alpha=1.0,  # the KL term alone: what this test measures
        per_token=True,
    )
    batches = list(task.train_batches(1.0, 16, seed=5))

    def divergence() -> float:
        student.eval()
        with torch.no_grad():
            return sum(loss(student, batch).item() for batch in batches[:4]) / 4

    before = divergence()
    timings = fine_tune(
        student,
        iter(batches * 3),
        steps=len(batches) * 3,
        learning_rate=1e-3,
        warmup_ratio=0.1,
        weight_decay=0.0,
        log_every=10,
        label="distil",
        loss_fn=loss,
    )
    after = divergence()
    assert after < 0.7 * before, (before, after)
    assert timings["last_loss"] < timings["first_loss"]


@pytest.mark.slow
def test_sparsity_reaches_the_target_and_the_ir_keeps_the_zeros(
    published_model, tiny_model_dir, tmp_path
):
    version = run_pipeline(
        _settings(
            tiny_model_dir,
            tmp_path,
            mode="sparsity",
            sparsity=0.6,
            sparsity_qat=False,
            model_name="tiny-sparse",
        )
    )
    assert version is not None
    metrics = version.metrics()
    report = metrics["sparsity"]
    assert report["target"] == 0.6
    assert report["prunable"] == pytest.approx(0.6, abs=0.01)
    # Only the encoder's linear layers are pruned: 6 weights per layer, 2 layers.
    assert len(report["layers"]) == 12
    assert all(".encoder.layer." in name for name in report["layers"])
    assert 0 < report["all_parameters"] < report["prunable"]
    # The masked weights are zeros in the INT8 IR too, which compresses better than it did.
    # The pruned encoder weights are a fifth of the tiny model's int8 weights (its embedding
    # matrix, quantized too, is larger): compare with the dense model's IR.
    dense = sparsity.ir_weight_sparsity(published_model.ir_path)["int8_weight_zeros"]
    assert report["ir"]["int8_weight_zeros"] > dense + 0.05
    assert report["ir"]["bin_zlib_bytes"] < report["ir"]["bin_bytes"]
    assert "qat_training" not in metrics["timings"]
    assert metrics["baseline_model"] == "the dense FP32 model"
    assert _fake_quantize_ops(version) > 0


def test_student_layers_beyond_the_model_is_a_clear_error(tiny_model_dir):
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)
    with pytest.raises(distillation.DistillationError, match="only 2 layers"):
        distillation.shrink(model, 3)


def test_teacher_and_student_must_share_the_vocabulary(tiny_model_dir):
    from transformers import BertConfig, BertForQuestionAnswering

    student = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    with pytest.raises(distillation.DistillationError, match="one tokenizer"):
        distillation.check_compatible(BertForQuestionAnswering(config), student)


def test_cuda_without_a_gpu_fails_before_any_work(tiny_model_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainingError, match="torch sees no GPU"):
        run_pipeline(_settings(tiny_model_dir, tmp_path, device="cuda"))


@pytest.mark.parametrize("name", names())
def test_every_preset_is_valid_settings(name):
    import yaml

    values = yaml.safe_load(path(name).read_text())
    settings = TrainingSettings.load(yaml_files=[path(name)], environ={})
    assert {key: getattr(settings, key) for key in values} == values


def test_presets_layer_under_the_config_file_and_set(tmp_path):
    from qatflow.training.cli import add_arguments, settings_files

    config = tmp_path / "mine.yaml"
    config.write_text("student_layers: 2\n")
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--preset", "distillation_qat", "--preset", "sst2", "--config", str(config)]
    )
    settings = TrainingSettings.load(yaml_files=settings_files(args), environ={})
    assert (settings.mode, settings.task, settings.student_layers) == (
        "distillation_qat",
        "text-classification",
        2,
    )


def test_unknown_preset_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "qatflow.training", "--preset", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr
    assert "distillation_qat" in result.stderr


@pytest.mark.slow
def test_classification_distils_into_a_smaller_student(tiny_classifier_dir, tmp_path):
    from tests.conftest import tiny_classifier_overrides

    values = tiny_classifier_overrides(tiny_classifier_dir, tmp_path)
    values.update(
        mode="distillation_qat",
        student_layers=1,
        max_train_samples=200,
        max_eval_samples=60,
        epochs=4.0,
        model_name="tiny-classifier-student",
    )
    version = run_pipeline(TrainingSettings.load(overrides=values, environ={}))
    assert version is not None
    metrics = version.metrics()
    assert version.manifest["task"] == "text-classification"
    for stage in STAGES:
        assert set(metrics[stage]) == {"accuracy", "f1", "samples"}
    assert "transfer" not in metrics  # the hand-written set is for question answering
    assert (metrics["student"]["layers"], metrics["student"]["teacher_layers"]) == (1, 2)
    assert (
        metrics["timings"]["distillation_training"]["last_loss"]
        < (metrics["timings"]["distillation_training"]["first_loss"])
    )
