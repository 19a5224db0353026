"""Client of our HTTP services' ``POST /v1/question-answering`` API."""

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
from qatflow.core.qa import Answer

QA_PATH = "/v1/question-answering"
READY_PATH = "/v2/health/ready"


class HttpQuestionAnswering:
    """Asks a running qatflow HTTP service; the service tokenizes and post-processes."""

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
        data = self._post(body)
        outputs = data.get("outputs") if isinstance(data, dict) else None
        if not isinstance(outputs, list) or len(outputs) != len(questions):
            raise ServerError(f"{self.url}: batch response without one output per input")
        return [_answers(item, self.url) for item in outputs]

    def close(self) -> None:
        self._client.close()

    def _post(self, body: dict[str, Any]) -> Any:
        return with_retries(lambda: self._post_once(body), self.retry, f"POST {self.url}{QA_PATH}")

    def _post_once(self, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(QA_PATH, json=body)
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


def _request(question: str, context: str, top_k: int, max_answer_len: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "context": context}
    if top_k != 1:
        body["top_k"] = top_k
    if max_answer_len is not None:
        body["max_answer_len"] = max_answer_len
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
