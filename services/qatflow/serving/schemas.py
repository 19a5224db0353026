"""The JSON the HTTP API reads and writes. Strict: a wrong type is an error, never coerced."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from qatflow.serving.errors import BadRequestError, InvalidInputError

_STRICT = ConfigDict(strict=True, extra="forbid")


class QuestionAnsweringInput(BaseModel):
    """One question about one context."""

    model_config = _STRICT

    question: str = Field(min_length=1, description="The question, in the context's language.")
    context: str = Field(min_length=1, description="The text holding the answer; any length.")
    top_k: int = Field(
        default=1, ge=1, le=20, description="How many answers to return, best first."
    )
    max_answer_len: int | None = Field(
        default=None, ge=1, le=512, description="Longest answer in tokens (default: the service's)."
    )


class BatchInput(BaseModel):
    """Several independent questions answered in one call."""

    model_config = _STRICT

    inputs: list[QuestionAnsweringInput] = Field(min_length=1)


class AnswerOutput(BaseModel):
    answer: str = Field(description="The answer, exactly context[start:end].")
    score: float = Field(description="P(start) * P(end) of the span.")
    start: int = Field(description="Character offset of the answer in the context.")
    end: int = Field(description="Character offset just past the answer.")


class AnswersOutput(BaseModel):
    """The reply when ``top_k`` > 1."""

    answers: list[AnswerOutput]


class BatchOutput(BaseModel):
    """One entry per input, in order: an answer, or ``{"answers": [...]}`` when top_k > 1."""

    outputs: list[AnswerOutput | AnswersOutput]


def _kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "inputs" in value else "single"


# A body with "inputs" is a batch; errors then speak only of the form the client meant.
RequestBody = Annotated[
    Annotated[QuestionAnsweringInput, Tag("single")] | Annotated[BatchInput, Tag("batch")],
    Discriminator(_kind),
]
REQUEST_ADAPTER: TypeAdapter[QuestionAnsweringInput | BatchInput] = TypeAdapter(RequestBody)


def parse_request(body: bytes, max_batch_size: int) -> QuestionAnsweringInput | BatchInput:
    """Bytes to a validated request, or the 400/422 error that says what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequestError(f"body is not valid UTF-8 (byte {error.start})") from None
    if not text.strip():
        raise BadRequestError("empty body: send a JSON object with question and context")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInputError("body must be a JSON object with question and context, or inputs")
    try:
        parsed = REQUEST_ADAPTER.validate_python(data)
    except ValidationError as error:
        raise InvalidInputError(describe(error)) from None
    if isinstance(parsed, BatchInput) and len(parsed.inputs) > max_batch_size:
        raise InvalidInputError(
            f"too many inputs: {len(parsed.inputs)}, at most {max_batch_size} per request"
        )
    return parsed


def describe(error: ValidationError) -> str:
    """Pydantic's errors as one line a client can act on: ``inputs.0.question: Field required``."""
    problems = []
    for item in error.errors(include_url=False):
        # Drop the discriminator tag pydantic puts first in the location.
        location = [str(part) for part in item["loc"] if part not in ("single", "batch")]
        problems.append(f"{'.'.join(location) or 'body'}: {item['msg']}")
    return "; ".join(problems)


class ErrorOutput(BaseModel):
    """Every error reply: 400, 404, 413, 422 or 503."""

    error: str


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(
        description="The version being served (Open Inference Protocol shape)."
    )
    version: int
    platform: str = Field(description="The runtime serving it: optimum or onnxruntime.")
    backend: str
    task: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    manifest: dict[str, Any] = Field(description="Summary of the published manifest.")
