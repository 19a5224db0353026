"""``POST /v1/text-classification`` of both services, on the classifier the pipeline published."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from qatflow.core.artifacts import ModelVersion
from qatflow.training import synthetic_classification
from qatflow.training.examples import ClassificationExample
from tests.conftest import (
    CROSS_RUNTIME_ABS,
    PINNED_PRECISION,
    PROBABILITY_TOLERANCE,
    ir_class_probabilities,
)

from .conftest import ServiceProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluation(published_classifier: ModelVersion) -> list[ClassificationExample]:
    """The examples the training job scored its INT8 IR on (same generator, size and seed)."""
    metrics = published_classifier.metrics()
    seed = int(metrics["settings"]["seed"])
    return synthetic_classification.generate_sentiment(
        "validation", int(metrics["int8"]["samples"]), seed
    )


def label_scores(reply: dict) -> dict[str, float]:
    return {item["label"]: item["score"] for item in reply["labels"]}


def test_both_backends_agree_with_the_ir_and_the_training_accuracy(
    classifier_services: dict[str, ServiceProcess], published_classifier: ModelVersion, evaluation
) -> None:
    labels = published_classifier.manifest["labels"]
    expected = ir_class_probabilities(published_classifier, [e.text for e in evaluation])
    for backend, service in classifier_services.items():
        outputs = []
        for first in range(0, len(evaluation), 32):  # max_batch_size inputs per request
            body = {
                "inputs": [{"text": e.text, "top_k": 99} for e in evaluation[first : first + 32]]
            }
            response = service.classify(body)
            assert response.status_code == 200, response.text
            outputs += response.json()["outputs"]
        got = np.array([[label_scores(item)[label] for label in labels] for item in outputs])
        # Batched and padded in the service, one by one here (see PROBABILITY_TOLERANCE).
        np.testing.assert_allclose(
            got, expected, atol=PROBABILITY_TOLERANCE[backend], err_msg=backend
        )
        for item in outputs:
            scores = [entry["score"] for entry in item["labels"]]
            assert scores == sorted(scores, reverse=True)
            assert sum(scores) == pytest.approx(1.0)
        predicted = [item["labels"][0]["label"] for item in outputs]
        accuracy = 100.0 * np.mean(
            [p == labels[e.label] for p, e in zip(predicted, evaluation, strict=True)]
        )
        assert accuracy == pytest.approx(
            published_classifier.metrics()["int8"]["accuracy"], abs=1.0
        )


def test_single_batch_and_top_k_forms(
    classifier_services: dict[str, ServiceProcess], evaluation
) -> None:
    texts = [e.text for e in evaluation[:3]]
    replies = {}
    for backend, service in classifier_services.items():
        single = service.classify({"text": texts[0]})
        assert single.status_code == 200, single.text
        assert set(single.json()) == {"label", "score"}
        batch = service.classify({"inputs": [{"text": text} for text in texts]}).json()
        assert batch["outputs"][0] == single.json()
        top = service.classify({"text": texts[0], "top_k": 2}).json()
        assert top["labels"][0] == single.json()
        replies[backend] = batch["outputs"]
    optimum, onnx = replies["optimum"], replies["onnxruntime"]
    assert [r["label"] for r in optimum] == [r["label"] for r in onnx]
    assert [r["score"] for r in optimum] == pytest.approx(
        [r["score"] for r in onnx], abs=CROSS_RUNTIME_ABS
    )


def test_text_longer_than_the_model_is_truncated(
    classifier_services: dict[str, ServiceProcess], published_classifier: ModelVersion, evaluation
) -> None:
    text = evaluation[0].text
    long = text + " " + " ".join(synthetic_classification._FILLER * 200)  # thousands of tokens
    expected = ir_class_probabilities(published_classifier, [long])[0]
    for backend, service in classifier_services.items():
        reply = service.classify({"text": long, "top_k": 2})
        assert reply.status_code == 200, reply.text
        got = label_scores(reply.json())
        labels = published_classifier.manifest["labels"]
        assert [got[label] for label in labels] == pytest.approx(
            list(expected), abs=PROBABILITY_TOLERANCE[backend]
        )


def test_model_metadata_reports_task_and_labels(
    classifier_services: dict[str, ServiceProcess], published_classifier: ModelVersion
) -> None:
    for backend, service in classifier_services.items():
        metadata = service.client.get(f"/v2/models/{published_classifier.name}").json()
        assert metadata["task"] == "text-classification"
        assert metadata["backend"] == backend
        assert metadata["labels"] == ["negative", "positive"]
        assert metadata["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 2]}]
        assert metadata["manifest"]["text_pair"] is False


def test_question_answering_endpoint_of_a_classifier_is_404(
    classifier_services: dict[str, ServiceProcess],
) -> None:
    for service in classifier_services.values():
        response = service.ask({"question": "Who?", "context": "Alice."})
        assert response.status_code == 404
        assert response.json() == {
            "error": "this service serves a text-classification model; use "
            "/v1/text-classification (not /v1/question-answering)"
        }


def _too_many_inputs() -> bytes:
    return json.dumps({"inputs": [{"text": "good"}] * 33}).encode()


MALFORMED = [
    # (case, body, status, words the error must contain)
    ("not JSON", b"text: good", 400, "not valid JSON"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', 400, "UTF-8"),
    ("empty body", b"", 400, "JSON object with text"),
    ("JSON array", b'["good"]', 422, "JSON object with text"),
    ("missing text", b"{}", 422, "text: Field required"),
    ("empty text", b'{"text": ""}', 422, "text"),
    ("number as text", b'{"text": 5}', 422, "valid string"),
    ("null text", b'{"text": null}', 422, "text"),
    ("text pair to a single-text model", b'{"text": "a", "text_pair": "b"}', 422, "text_pair"),
    ("empty text_pair", b'{"text": "a", "text_pair": ""}', 422, "text_pair"),
    ("top_k as string", b'{"text": "a", "top_k": "2"}', 422, "top_k"),
    ("top_k zero", b'{"text": "a", "top_k": 0}', 422, "top_k"),
    ("question-answering fields", b'{"question": "a", "context": "b"}', 422, "question"),
    ("unknown field", b'{"text": "a", "texts": "b"}', 422, "texts"),
    ("empty batch", b'{"inputs": []}', 422, "inputs"),
    ("bad batch item", b'{"inputs": [{"text": "a"}, {"txt": "b"}]}', 422, "inputs.1.text"),
    ("too many batch items", _too_many_inputs(), 422, "too many inputs"),
    ("oversized body", b'{"text": "' + b"y" * 1_100_000 + b'"}', 413, "exceeds the limit"),
]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_request_gets_a_clear_4xx(
    classifier_services: dict[str, ServiceProcess], body: bytes, status: int, words: str
) -> None:
    for service in classifier_services.values():
        response = service.client.post(
            "/v1/text-classification", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"]
        assert words in response.json()["error"]
        assert "Traceback" not in response.json()["error"]


def test_metrics_count_classified_texts(
    classifier_services: dict[str, ServiceProcess], published_classifier: ModelVersion
) -> None:
    service = classifier_services["onnxruntime"]
    assert service.classify({"inputs": [{"text": "fine"}, {"text": "bad"}]}).status_code == 200
    assert service.classify({"text": ""}).status_code == 422
    text = service.metrics()
    labels = f'backend="onnxruntime",model="{published_classifier.name}"'
    counted = re.search(rf"qatflow_texts_total\{{{labels}\}} (\S+)", text)
    assert counted is not None and float(counted.group(1)) >= 2
    assert re.search(rf"qatflow_request_duration_seconds_count\{{{labels}\}} [1-9]", text)
    assert re.search(
        r'qatflow_request_errors_total\{backend="onnxruntime",code="422",kind="InvalidInputError"',
        text,
    )
    served = labels.replace(",", f',inference_precision="{PINNED_PRECISION}",', 1)
    assert f"qatflow_model_version{{{served}}} {published_classifier.version}.0" in text


def test_openapi_documents_both_task_endpoints(
    classifier_services: dict[str, ServiceProcess],
) -> None:
    schema = classifier_services["optimum"].client.get("/openapi.json").json()
    assert {"/v1/question-answering", "/v1/text-classification"} <= set(schema["paths"])
    request = schema["components"]["schemas"]["TextClassificationRequest"]
    assert len(request["oneOf"]) == 2
    assert {"text", "text_pair", "top_k"} == set(
        schema["components"]["schemas"]["TextClassificationInput"]["properties"]
    )


def test_ask_command_over_http_uses_the_endpoint_of_its_inputs(
    classifier_services: dict[str, ServiceProcess], evaluation
) -> None:
    from tests.client.ask_command import run_ask

    service = classifier_services["optimum"]
    text = evaluation[1].text
    result = run_ask("--url", service.url, "--text", text, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == service.classify({"text": text}).json()

    result = run_ask("--url", service.url, "--question", "Who?", "--context", "Alice.")
    assert result.returncode == 5  # the service of the other task: model not found
    assert "use /v1/text-classification" in result.stderr
