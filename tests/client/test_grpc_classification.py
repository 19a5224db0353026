"""``qatflow ask`` classifying texts over gRPC against each server (the OVMS stand-in over KServe
v2 and TF-Serving, MLServer over KServe v2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qatflow.client.errors import BadInputError
from qatflow.client.grpc_classification import GrpcTextClassification
from qatflow.client.protocol import connect
from qatflow.training import synthetic_classification
from tests.conftest import ir_class_probabilities

from .ask_command import run_ask
from .conftest import CLASSIFIER_BARE, CLASSIFIER_LIMIT_2, per_target


@pytest.fixture(scope="module")
def texts() -> list[str]:
    examples = synthetic_classification.generate_sentiment("validation", 12, 3)
    long = (
        examples[0].text + " " + " ".join(synthetic_classification._FILLER * 60)
    )  # truncated to the model
    return [long] + [example.text for example in examples[1:]]


@per_target
@pytest.mark.parametrize("served", ["published", CLASSIFIER_BARE, CLASSIFIER_LIMIT_2])
def test_library_classifies_like_openvino_in_process(
    protocol, served, classifier_server, published_classifier, texts
):
    """As published; from a server whose metadata lists no tensors; from one that refuses
    more than two texts per request."""
    labels = published_classifier.manifest["labels"]
    expected = ir_class_probabilities(published_classifier, texts)
    client = GrpcTextClassification(
        connect(protocol, classifier_server.address, timeout=10),
        published_classifier.name if served == "published" else served,
        published_classifier,
    )
    try:
        client.check()
        batch = client.classify_many(texts, top_k=len(labels))
        single = client.classify(texts[1])
        with pytest.raises(BadInputError, match="single texts"):
            client.classify(texts[1], "a second text")
    finally:
        client.close()
    got = np.array([[{p.label: p.score for p in row}[label] for label in labels] for row in batch])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert single == batch[1][:1]
    assert [row[0].label for row in batch] == [labels[i] for i in expected.argmax(axis=1)]


@per_target
def test_cli_prints_label_and_score(protocol, classifier_server, published_classifier, texts):
    expected = ir_class_probabilities(published_classifier, texts[:2])
    labels = published_classifier.manifest["labels"]
    common = [
        "--grpc",
        classifier_server.address,
        "--protocol",
        protocol,
        "--models-dir",
        str(published_classifier.path.parent.parent),
    ]
    result = run_ask(*common, "--text", texts[1], "--json")
    assert result.returncode == 0, result.stderr
    [reply] = [json.loads(line) for line in result.stdout.splitlines()]
    assert reply["label"] == labels[int(expected[1].argmax())]
    assert reply["score"] == pytest.approx(float(expected[1].max()), abs=1e-4)

    result = run_ask(*common, "--text", texts[0], "--top-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["text", "label", "score", "ms"]
    order = np.argsort(-expected[0])
    for line, index in zip(lines[1:], order, strict=True):
        assert f" {labels[index]} " in line and f"{expected[0][index]:.4f}" in line


def test_cli_reads_a_file_of_text_rows(classifier_server, published_classifier, texts, tmp_path):
    rows = tmp_path / "texts.jsonl"
    rows.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts[:4]))
    result = run_ask(
        "--grpc",
        classifier_server.address,
        "--models-dir",
        str(published_classifier.path.parent.parent),
        "--input",
        str(rows),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    expected = ir_class_probabilities(published_classifier, texts[:4])
    got = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    assert got == pytest.approx(list(expected.max(axis=1)), abs=1e-4)


def test_question_for_a_classifier_is_a_usage_error(classifier_server, published_classifier):
    result = run_ask(
        "--grpc",
        classifier_server.address,
        "--models-dir",
        str(published_classifier.path.parent.parent),
        "--question",
        "Who?",
        "--context",
        "Alice.",
    )
    assert result.returncode == 2
    assert "is a text-classification model: give --text" in result.stderr
