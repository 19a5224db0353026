"""Shared fixtures: a tiny BERT and tokenizer, and one model version published by the real
training pipeline (fine-tune -> NNCF calibration -> QAT -> export -> gate -> publish)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from qatflow.local import free_port  # noqa: F401  (re-exported for tests)

os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_MODEL_NAME = "tiny-qa"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests (marker ``e2e``) run only when a ``-m`` expression names them, so that
    ``make test`` and every other selection leave them out."""
    if "e2e" in (config.getoption("markexpr") or ""):
        return
    end_to_end = [item for item in items if item.get_closest_marker("e2e")]
    if end_to_end:
        config.hook.pytest_deselected(items=end_to_end)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


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

    from qatflow.training import synthetic

    examples = synthetic.generate("train", 300, 0) + synthetic.generate("validation", 100, 0)
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
    """A ModelVersion published by the real pipeline; its models dir is ``.path.parent.parent``."""
    from qatflow.training.config import TrainingSettings
    from qatflow.training.pipeline import run_pipeline

    models_dir = tmp_path_factory.mktemp("models")
    settings = TrainingSettings.load(
        overrides=tiny_training_overrides(tiny_model_dir, models_dir), environ={}
    )
    return run_pipeline(settings)


TINY_CLASSIFIER_NAME = "tiny-classifier"


def build_tiny_classifier(directory: Path) -> Path:
    """A 2-layer, 64-wide BERT encoder (no task head, like the embedded MiniLM) with a WordPiece
    vocabulary covering the embedded classification data sets."""
    from transformers import BertModel

    from qatflow.training import synthetic_classification as synthetic

    texts = []
    for split, count in (("train", 1000), ("validation", 300)):
        examples = synthetic.generate_sentiment(split, count, 0)
        examples += synthetic.generate_paraphrase(split, count, 0)
        texts += [f"{example.text} {example.text_pair or ''}" for example in examples]
    return _build_tiny_bert(directory, texts, BertModel)


def tiny_classifier_overrides(model_dir: Path, output_dir: Path) -> dict[str, object]:
    """The tiny run of the real pipeline, for text classification (the sentiment set)."""
    return {
        **tiny_training_overrides(model_dir, output_dir),
        "task": "text-classification",
        "model_name": TINY_CLASSIFIER_NAME,
        "max_train_samples": 400,
        "max_eval_samples": 200,
        # Negations and contrasts need more steps than QA's tiny run to get above chance.
        "epochs": 10.0,
        "learning_rate": 3e-3,
    }


@pytest.fixture(scope="session")
def tiny_classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


@pytest.fixture(scope="session")
def published_classifier(tiny_classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A text-classification ModelVersion (binary sentiment: negative, positive) published by
    the real pipeline; its models dir is ``.path.parent.parent``."""
    from qatflow.training.config import TrainingSettings
    from qatflow.training.pipeline import run_pipeline

    models_dir = tmp_path_factory.mktemp("classifier-models")
    settings = TrainingSettings.load(
        overrides=tiny_classifier_overrides(tiny_classifier_dir, models_dir), environ={}
    )
    return run_pipeline(settings)


def ir_class_probabilities(version, texts: list[str]):
    """Softmax of a classifier IR's logits computed outside any service or client: plain
    OpenVINO, one unpadded text at a time, tokenized by the version's own tokenizer."""
    import numpy as np
    import openvino as ov
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(version.path)
    compiled = ov.Core().compile_model(str(version.ir_path), "CPU")
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
