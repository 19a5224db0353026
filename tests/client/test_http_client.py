"""The HTTP client against a small FastAPI app of the test's own, served by real uvicorn.

The app answers with a fixed rule (the first word of the context) and imitates the service's
error statuses, so what is tested is the client: request shapes, parsing, errors, retries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qatflow.client.errors import (
    DeadlineExceededError,
    InputMismatchError,
    ServerUnavailableError,
)
from qatflow.client.http import HttpQuestionAnswering, HttpTextClassification
from qatflow.client.retry import RetryPolicy
from qatflow.core.classification import Prediction
from qatflow.local import free_port

from .ask_command import run_ask


class QuestionAnsweringApp:
    """The ``/v1/question-answering`` contract, answering with the context's first word."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.ready = True
        self.delay = 0.0
        self.app = FastAPI()
        self.app.post("/v1/question-answering")(self.answer)
        self.app.post("/v1/text-classification")(self.classify)
        self.app.get("/v2/health/ready")(self.health)

    async def health(self) -> JSONResponse:
        return JSONResponse({"ready": self.ready}, status_code=200 if self.ready else 503)

    async def classify(self, request: Request) -> JSONResponse:
        """Labels by the text's length: "long" past 10 characters, else "short"."""
        body = await request.json()
        self.requests.append(body)

        def one(item: dict) -> dict:
            ranked = ["long", "short"] if len(item["text"]) > 10 else ["short", "long"]
            labels = [{"label": ranked[0], "score": 0.9}, {"label": ranked[1], "score": 0.1}]
            return {"labels": labels} if item.get("top_k", 1) > 1 else labels[0]

        if "inputs" in body:
            return JSONResponse({"outputs": [one(item) for item in body["inputs"]]})
        return JSONResponse(one(body))

    async def answer(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.ready:
            return JSONResponse({"error": "no model loaded yet"}, status_code=503)
        if self.delay:
            time.sleep(self.delay)
        if "inputs" in body:
            outputs = [self.one(item) for item in body["inputs"]]
            if any(isinstance(item, JSONResponse) for item in outputs):
                return JSONResponse({"error": "invalid item"}, status_code=422)
            return JSONResponse({"outputs": outputs})
        result = self.one(body)
        return result if isinstance(result, JSONResponse) else JSONResponse(result)

    def one(self, item: dict) -> dict | JSONResponse:
        if not item.get("question", "").strip():
            return JSONResponse({"error": "question must not be empty"}, status_code=422)
        context = item["context"]
        end = context.find(" ") if " " in context else len(context)
        first = {"answer": context[:end], "score": 0.75, "start": 0, "end": end}
        if item.get("top_k", 1) > 1:
            whole = {"answer": context, "score": 0.25, "start": 0, "end": len(context)}
            return {"answers": [first, whole]}
        return first


@pytest.fixture(scope="module")
def http_service() -> Iterator[tuple[str, QuestionAnsweringApp]]:
    service = QuestionAnsweringApp()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", service
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def service(http_service) -> Iterator[QuestionAnsweringApp]:
    _, app = http_service
    app.requests.clear()
    yield app
    app.ready, app.delay = True, 0.0


def test_single_question(http_service, service):
    url, _ = http_service
    client = HttpQuestionAnswering(url)
    try:
        [answer] = client.ask("Who?", "Alice lives in Paris.")
    finally:
        client.close()
    assert (answer.answer, answer.score, answer.start, answer.end) == ("Alice", 0.75, 0, 5)
    assert service.requests == [{"question": "Who?", "context": "Alice lives in Paris."}]


def test_top_k_and_max_answer_len_are_sent(http_service, service):
    url, _ = http_service
    client = HttpQuestionAnswering(url)
    try:
        answers = client.ask("Who?", "Bob works.", top_k=2, max_answer_len=5)
    finally:
        client.close()
    assert [a.answer for a in answers] == ["Bob", "Bob works."]
    assert service.requests[0]["top_k"] == 2 and service.requests[0]["max_answer_len"] == 5


def test_batch_form(http_service, service):
    url, _ = http_service
    client = HttpQuestionAnswering(url)
    try:
        answers = client.ask_many(["Who?", "Who else?"], ["Alice runs.", "Bob swims."])
    finally:
        client.close()
    assert [[a.answer for a in item] for item in answers] == [["Alice"], ["Bob"]]
    assert len(service.requests) == 1 and len(service.requests[0]["inputs"]) == 2


def test_refused_request_carries_the_services_error(http_service, service):
    url, _ = http_service
    client = HttpQuestionAnswering(url)
    try:
        with pytest.raises(InputMismatchError, match="question must not be empty"):
            client.ask(" ", "Alice runs.")
    finally:
        client.close()


def test_not_ready_service_is_retried_a_bounded_number_of_times(http_service, service):
    url, _ = http_service
    service.ready = False
    client = HttpQuestionAnswering(url, retry=RetryPolicy(attempts=3, backoff=0.05))
    try:
        assert not client.ready()
        with pytest.raises(ServerUnavailableError, match="gave up after 3 attempts"):
            client.ask("Who?", "Alice runs.")
    finally:
        client.close()
    assert len(service.requests) == 3


def test_slow_service_exceeds_the_deadline(http_service, service):
    url, _ = http_service
    service.delay = 1.0
    client = HttpQuestionAnswering(url, timeout=0.2)
    try:
        with pytest.raises(DeadlineExceededError):
            client.ask("Who?", "Alice runs.")
    finally:
        client.close()


def test_nothing_listening_is_unavailable():
    client = HttpQuestionAnswering(
        f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(attempts=2, backoff=0.01)
    )
    try:
        with pytest.raises(ServerUnavailableError, match="no server answering"):
            client.ask("Who?", "Alice runs.")
    finally:
        client.close()


def test_cli_json_and_benchmark(http_service, service, tmp_path):
    url, _ = http_service
    questions = tmp_path / "input.csv"
    questions.write_text('question,context\nWho?,"Alice runs, fast."\nWhere?,Paris is big.\n')
    result = run_ask("--url", url, "--input", str(questions), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"answer": "Alice", "score": 0.75, "start": 0, "end": 5},
        {"answer": "Paris", "score": 0.75, "start": 0, "end": 5},
    ]

    service.requests.clear()
    result = run_ask("--url", url, "--input", str(questions), "--iterations", "6", "--warmup", "2")
    assert result.returncode == 0, result.stderr
    assert "6 requests: p50" in result.stdout and "p99" in result.stdout
    assert "req/s" in result.stdout
    assert len(service.requests) == 8


def test_cli_exit_codes_for_refused_and_unreachable(http_service, service):
    url, _ = http_service
    result = run_ask("--url", url, "--question", "Who?", "--context", "x", "--max-answer-len", "0")
    assert result.returncode == 2  # argparse: must be at least 1

    result = run_ask(
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--question",
        "Who?",
        "--context",
        "x",
        "--retries",
        "1",
    )
    assert result.returncode == 4
    assert "gave up after 2 attempts" in result.stderr

    result = run_ask("--url", "127.0.0.1:8080", "--question", "Who?", "--context", "x")
    assert result.returncode == 2 and "http://" in result.stderr


def test_text_classification_requests_and_replies(http_service, service):
    url, _ = http_service
    client = HttpTextClassification(url)
    try:
        [single] = client.classify("tiny")
        ranked = client.classify("a longer text", "with a pair", top_k=2)
        batch = client.classify_many(["tiny", "a longer text"])
    finally:
        client.close()
    assert single == Prediction("short", 0.9)
    assert ranked == [Prediction("long", 0.9), Prediction("short", 0.1)]
    assert batch == [[Prediction("short", 0.9)], [Prediction("long", 0.9)]]
    assert service.requests[:2] == [
        {"text": "tiny"},
        {"text": "a longer text", "text_pair": "with a pair", "top_k": 2},
    ]
    assert service.requests[2] == {"inputs": [{"text": "tiny"}, {"text": "a longer text"}]}


def test_cli_classifies_text_rows_over_http(http_service, service, tmp_path):
    url, _ = http_service
    rows = tmp_path / "texts.csv"
    rows.write_text("text\ntiny\na longer text\n")
    result = run_ask("--url", url, "--input", str(rows), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"label": "short", "score": 0.9},
        {"label": "long", "score": 0.9},
    ]
    result = run_ask("--url", url, "--text", "tiny", "--max-answer-len", "3")
    assert result.returncode == 2 and "question answering only" in result.stderr
    result = run_ask("--url", url, "--text", "tiny", "--question", "Who?")
    assert result.returncode == 2 and "not both" in result.stderr
