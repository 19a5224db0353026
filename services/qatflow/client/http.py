"""Client of our HTTP services' ``POST /v1/question-answering`` and ``/v1/text-classification``."""

from __future__ import annotations

from typing import Any

import httpx

from qatflow.client.errors import (
    ClientError,
    DeadlineExceededError,
    InputMismatchError,
    ModelNotFoundError,
    ServerError,
    ServerUnavailableError,
)
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core.classification import Prediction
from qatflow.core.qa import Answer

QA_PATH = "/v1/question-answering"
CLASSIFICATION_PATH = "/v1/text-classification"
READY_PATH = "/v2/health/ready"


class HttpService:
    """A running qatflow HTTP service; the service tokenizes and post-processes."""

    path = QA_PATH

    def __init__(
        self, url: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def ready(self) -> bool:
        try:
            return self._client.get(READY_PATH).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> Any:
        return with_retries(
            lambda: self._post_once(body), self.retry, f"POST {self.url}{self.path}"
        )

    def _post_once(self, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(self.path, json=body)
        except httpx.TimeoutException:
            raise DeadlineExceededError(f"{self.url} did not answer within the deadline") from None
        except httpx.TransportError as error:
            raise ServerUnavailableError(f"no server answering at {self.url} ({error})") from None
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise ServerError(f"{self.url} answered with something other than JSON") from None
        raise _error_for(response, self.url)

    def _batch_outputs(self, data: Any, count: int) -> list[Any]:
        outputs = data.get("outputs") if isinstance(data, dict) else None
        if not isinstance(outputs, list) or len(outputs) != count:
            raise ServerError(f"{self.url}: batch response without one output per input")
        return outputs


class HttpQuestionAnswering(HttpService):
    """``POST /v1/question-answering``."""

    path = QA_PATH

    def ask(
        self, question: str, context: str, *, top_k: int = 1, max_answer_len: int | None = None
    ) -> list[Answer]:
        body = _request(question, context, top_k, max_answer_len)
        return _answers(self._post(body), self.url)

    def ask_many(
        self,
        questions: list[str],
        contexts: list[str],
        *,
        top_k: int = 1,
        max_answer_len: int | None = None,
    ) -> list[list[Answer]]:
        """The batch form: ``{"inputs": [...]}`` -> ``{"outputs": [...]}``."""
        body = {
            "inputs": [
                _request(q, c, top_k, max_answer_len)
                for q, c in zip(questions, contexts, strict=True)
            ]
        }
        outputs = self._batch_outputs(self._post(body), len(questions))
        return [_answers(item, self.url) for item in outputs]


class HttpTextClassification(HttpService):
    """``POST /v1/text-classification``."""

    path = CLASSIFICATION_PATH

    def classify(
        self, text: str, text_pair: str | None = None, *, top_k: int = 1
    ) -> list[Prediction]:
        return _predictions(self._post(_text_request(text, text_pair, top_k)), self.url)

    def classify_many(
        self, texts: list[str], text_pairs: list[str] | None = None, *, top_k: int = 1
    ) -> list[list[Prediction]]:
        """The batch form: ``{"inputs": [...]}`` -> ``{"outputs": [...]}``."""
        pairs: list[str | None] = (
            list(text_pairs) if text_pairs is not None else [None] * len(texts)
        )
        body = {
            "inputs": [
                _text_request(text, pair, top_k) for text, pair in zip(texts, pairs, strict=True)
            ]
        }
        outputs = self._batch_outputs(self._post(body), len(texts))
        return [_predictions(item, self.url) for item in outputs]


def _request(question: str, context: str, top_k: int, max_answer_len: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "context": context}
    if top_k != 1:
        body["top_k"] = top_k
    if max_answer_len is not None:
        body["max_answer_len"] = max_answer_len
    return body


def _text_request(text: str, text_pair: str | None, top_k: int) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if text_pair is not None:
        body["text_pair"] = text_pair
    if top_k != 1:
        body["top_k"] = top_k
    return body


def _error_for(response: httpx.Response, url: str) -> ClientError:
    try:
        detail = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        detail = ""
    detail = " ".join((detail or response.text or response.reason_phrase).split())[:300]
    status = response.status_code
    if status == 503:
        return ServerUnavailableError(f"{url} is not ready ({detail})")
    if status == 404:
        return ModelNotFoundError(f"{url}: {detail}")
    if status in {400, 413, 422}:
        return InputMismatchError(f"{url} refused the request ({status}): {detail}")
    return ServerError(f"{url} failed ({status}): {detail}")


def _answers(data: Any, url: str) -> list[Answer]:
    """One answer object, or ``{"answers": [...]}`` when top_k > 1."""
    items = data["answers"] if isinstance(data, dict) and "answers" in data else [data]
    try:
        return [
            Answer(str(item["answer"]), float(item["score"]), int(item["start"]), int(item["end"]))
            for item in items
        ]
    except (KeyError, TypeError, ValueError):
        raise ServerError(f"{url}: unexpected answer format: {str(data)[:200]}") from None


def _predictions(data: Any, url: str) -> list[Prediction]:
    """One ``{label, score}`` object, or ``{"labels": [...]}`` when top_k > 1."""
    items = data["labels"] if isinstance(data, dict) and "labels" in data else [data]
    try:
        return [Prediction(str(item["label"]), float(item["score"])) for item in items]
    except (KeyError, TypeError, ValueError):
        raise ServerError(f"{url}: unexpected label format: {str(data)[:200]}") from None
