"""Shared fixtures: a tiny BERT and tokenizer, and one model version published by the real
training pipeline (fine-tune -> NNCF calibration -> QAT -> export -> gate -> publish)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from qatflow.local import free_port  # noqa: F401  (re-exported for tests)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_MODEL_NAME = "tiny-qa"
# Tests that compare two runtimes, or a runtime with training's evaluation, pin the precision
# of the ops that are not INT8: at the CPU's default (bf16 with AMX or AVX512-BF16) scores move by
# up to ~2 % (measured on an AMX Xeon), at f32 only by the amounts below.
PINNED_PRECISION = "f32"
# At PINNED_PRECISION the optimum service and plain OpenVINO are one runtime: they differ only by
# float summation order (windows batched or not). The onnxruntime service runs another OpenVINO
# release (the one onnxruntime-openvino bundles) whose INT8 kernels sum in another order, which
# can move an activation across a rounding boundary by one quantization step. Measured worst
# cases: answer scores 1.6e-3 relative (AVX2 EPYC), class probabilities 2.8e-4 (AMX Xeon).
SAME_RUNTIME_ABS = 1e-4
CROSS_RUNTIME_REL = 5e-3  # of answer scores
CROSS_RUNTIME_ABS = 2e-3  # of class probabilities
# Per backend, the tolerance of a class probability against plain OpenVINO.
PROBABILITY_TOLERANCE = {"optimum": SAME_RUNTIME_ABS, "onnxruntime": CROSS_RUNTIME_ABS}


def compile_ir(version):
    """The version's IR compiled by plain OpenVINO on the CPU at ``PINNED_PRECISION``."""
    import openvino as ov

    return ov.Core().compile_model(
        str(version.ir_path), "CPU", {"INFERENCE_PRECISION_HINT": PINNED_PRECISION}
    )


# Tests on the session's Kubernetes control plane (tests/cluster/conftest.py).
CLUSTER_TESTS = "tests/cluster/"


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``-n N`` (``--dist load``), every test is scheduled on its own except the cluster
    tier's, which go to one worker together, so that one control plane serves them all.
    (xdist's own ``--dist loadgroup`` marks do not group under pytest 9.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ClusterTierTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return CLUSTER_TESTS if nodeid.startswith(CLUSTER_TESTS) else nodeid

    return ClusterTierTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """In CI (``CI=true``) a skipped end-to-end test fails: a missing engine is not a pass. Only a
    third-party image whose registry is unreachable (marker ``registry_image``) may skip."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("CI") == "true"
        and item.get_closest_marker("e2e")
        and not item.get_closest_marker("registry_image")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, which CI=true counts as a failure: {reason}"


def tiny_training_overrides(model_dir: Path, output_dir: Path) -> dict[str, object]:
    """Settings for a run of the real pipeline that takes seconds, not minutes."""
    return {
        "model_name_or_path": str(model_dir),
        "fine_tune": "always",
        "max_train_samples": 300,
        "max_eval_samples": 60,
        "max_seq_length": 128,
        "doc_stride": 32,
        "batch_size": 16,
        "epochs": 2.0,
        "learning_rate": 1e-3,
        "qat_epochs": 0.2,
        "qat_learning_rate": 1e-4,
        "calibration_samples": 16,
        # The tiny models' embeddings are random: they must learn, unlike pretrained ones.
        "freeze_embeddings": False,
        "accuracy_tolerance": 100.0,
        "model_name": TINY_MODEL_NAME,
        "output_dir": str(output_dir),
        "log_every": 20,
        # One thread: tiny kernels spend more time in thread hand-offs than in arithmetic,
        # and tests share the cores with the services they start.
        "num_threads": 1,
    }


def build_tiny_model(directory: Path) -> Path:
    """A 2-layer, 64-wide BERT for question answering with a WordPiece vocabulary covering the
    embedded data set."""
    from transformers import BertForQuestionAnswering

    from qatflow.training import synthetic_qa

    examples = synthetic_qa.generate("train", 300, 0) + synthetic_qa.generate("validation", 100, 0)
    return _build_tiny_bert(
        directory,
        [f"{example.question} {example.context}" for example in examples],
        BertForQuestionAnswering,
    )


def _build_tiny_bert(directory: Path, texts: list[str], model_class: type) -> Path:
    """Save a tiny BERT of ``model_class`` and a WordPiece tokenizer whose whole words are
    those of ``texts`` (characters as ``##`` pieces for the rest)."""
    from transformers import BertConfig, BertTokenizerFast

    words: set[str] = set()
    for text in texts:
        words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = sorted({c for word in words for c in word})
    vocab = special + sorted(words) + [f"##{c}" for c in characters]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    # transformers 5 ignores ``vocab_file=`` in the constructor; from_pretrained reads vocab.txt.
    tokenizer = BertTokenizerFast.from_pretrained(directory, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
    )
    model_class(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def published_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A ModelVersion published by the real pipeline; its models dir is ``.path.parent.parent``.
    Tests only read it."""
    return trained_once(
        tmp_path_factory, TINY_MODEL_NAME, lambda out: tiny_training_overrides(tiny_model_dir, out)
    )


TINY_CLASSIFIER_NAME = "tiny-classifier"


def build_tiny_classifier(directory: Path) -> Path:
    """A 2-layer, 64-wide BERT encoder (no task head, like the embedded MiniLM) with a WordPiece
    vocabulary covering the embedded classification data sets."""
    from transformers import BertModel

    from qatflow.training import synthetic_classification

    texts = []
    for split, count in (("train", 1000), ("validation", 300)):
        examples = synthetic_classification.generate_sentiment(split, count, 0)
        examples += synthetic_classification.generate_paraphrase(split, count, 0)
        texts += [f"{example.text} {example.text_pair or ''}" for example in examples]
    return _build_tiny_bert(directory, texts, BertModel)


def tiny_classifier_overrides(model_dir: Path, output_dir: Path) -> dict[str, object]:
    """The tiny run of the real pipeline, for text classification (the sentiment set)."""
    return {
        **tiny_training_overrides(model_dir, output_dir),
        "task": "text-classification",
        "model_name": TINY_CLASSIFIER_NAME,
        "max_train_samples": 800,
        "max_eval_samples": 200,
        # Negations and contrasts (and the sentiment set's wider vocabulary) need more steps
        # than QA's tiny run to get above chance: 400 examples at 3e-3 stayed at chance.
        "epochs": 10.0,
        "learning_rate": 1e-3,
    }


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def published_classifier(tiny_classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A text-classification ModelVersion (binary sentiment: negative, positive) published by
    the real pipeline; its models dir is ``.path.parent.parent``. Tests only read it."""
    return trained_once(
        tmp_path_factory,
        TINY_CLASSIFIER_NAME,
        lambda out: tiny_classifier_overrides(tiny_classifier_dir, out),
    )


# The fixtures that run the training pipeline: every test using one is marked `slow`, so that
# `-m "not slow"` (make test-fast) trains nothing.
TRAINED_FIXTURES = {"published_model", "published_classifier"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using a trained fixture are marked ``slow``. End-to-end tests (marker ``e2e``) run
    only when a ``-m`` expression names them, so that ``make test`` and every other selection
    leave them out."""
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if "e2e" in (config.getoption("markexpr") or ""):
        return
    end_to_end = [item for item in items if item.get_closest_marker("e2e")]
    if end_to_end:
        config.hook.pytest_deselected(items=end_to_end)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


def trained_once(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    overrides: Callable[[Path], dict[str, object]],
):
    """The version ``name`` published by one run of the real pipeline per test session: under
    pytest-xdist the first worker trains while the others wait on a file lock, then all open it."""
    from qatflow.core.artifacts import open_version
    from qatflow.training.config import TrainingSettings
    from qatflow.training.pipeline import run_pipeline

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    # Trained in place (tests read the run's work files by the paths it recorded); the marker
    # says the run finished, so a run that failed half-way is trained again, not reused.
    models_dir = root / f"trained-{name}"
    finished = root / f"trained-{name}.finished"
    with (root / f"trained-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not finished.exists():
            shutil.rmtree(models_dir, ignore_errors=True)
            settings = TrainingSettings.load(overrides=overrides(models_dir), environ={})
            run_pipeline(settings)
            finished.touch()
    return open_version(models_dir, name)


def ir_class_probabilities(version, texts: list[str]):
    """Softmax of a classifier IR's logits computed outside any service or client: plain
    OpenVINO, one unpadded text at a time, tokenized by the version's own tokenizer."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(version.path)
    compiled = compile_ir(version)
    rows = []
    for text in texts:
        encoded = tokenizer(
            text,
            truncation=True,
            max_length=version.manifest["max_seq_length"],
            return_tensors="np",
        )
        inputs = {name: encoded[name].astype(np.int64) for name in version.manifest["inputs"]}
        logits = compiled(inputs)["logits"][0].astype(np.float64)
        weights = np.exp(logits - logits.max())
        rows.append(weights / weights.sum())
    return np.array(rows)
