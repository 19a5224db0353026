"""The JSON the HTTP API reads and writes. Strict: a wrong type is an error, never coerced."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


class QuestionAnsweringBatchInput(BaseModel):
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


class QuestionAnsweringBatchOutput(BaseModel):
    """One entry per input, in order: an answer, or ``{"answers": [...]}`` when top_k > 1."""

    outputs: list[AnswerOutput | AnswersOutput]


def _kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "inputs" in value else "single"


# A body with "inputs" is a batch; errors then speak only of the form the client meant.
QuestionAnsweringBody = Annotated[
    Annotated[QuestionAnsweringInput, Tag("single")]
    | Annotated[QuestionAnsweringBatchInput, Tag("batch")],
    Discriminator(_kind),
]
QUESTION_ANSWERING_ADAPTER: TypeAdapter[QuestionAnsweringInput | QuestionAnsweringBatchInput] = (
    TypeAdapter(QuestionAnsweringBody)
)


class TextClassificationInput(BaseModel):
    """One text (or text pair) to classify."""

    model_config = _STRICT

    text: str = Field(
        min_length=1,
        description="The text to classify; tokens past the model's max_seq_length are ignored.",
    )
    text_pair: str | None = Field(
        default=None,
        min_length=1,
        description="The second text, only for a model trained on text pairs (manifest text_pair).",
    )
    top_k: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="How many labels to return, most probable first (at most all of them).",
    )


class TextClassificationBatchInput(BaseModel):
    """Several independent texts classified in one call."""

    model_config = _STRICT

    inputs: list[TextClassificationInput] = Field(min_length=1)


class LabelOutput(BaseModel):
    label: str = Field(description="The label's name, as the model's manifest lists it.")
    score: float = Field(description="Softmax probability of the label.")


class LabelsOutput(BaseModel):
    """The reply when ``top_k`` > 1."""

    labels: list[LabelOutput]


class TextClassificationBatchOutput(BaseModel):
    """One entry per input, in order: a label, or ``{"labels": [...]}`` when top_k > 1."""

    outputs: list[LabelOutput | LabelsOutput]


TextClassificationBody = Annotated[
    Annotated[TextClassificationInput, Tag("single")]
    | Annotated[TextClassificationBatchInput, Tag("batch")],
    Discriminator(_kind),
]
TEXT_CLASSIFICATION_ADAPTER: TypeAdapter[TextClassificationInput | TextClassificationBatchInput] = (
    TypeAdapter(TextClassificationBody)
)


@dataclass(frozen=True)
class RequestForm:
    """How one endpoint's body is validated, and how its errors name the expected fields."""

    adapter: TypeAdapter[Any]
    fields: str


QUESTION_ANSWERING_FORM = RequestForm(QUESTION_ANSWERING_ADAPTER, "question and context")
TEXT_CLASSIFICATION_FORM = RequestForm(TEXT_CLASSIFICATION_ADAPTER, "text")


def parse_request(body: bytes, max_batch_size: int, form: RequestForm) -> Any:
    """Bytes to a validated request, or the 400/422 error that says what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequestError(f"body is not valid UTF-8 (byte {error.start})") from None
    if not text.strip():
        raise BadRequestError(f"empty body: send a JSON object with {form.fields}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from None
    except RecursionError:
        # The stdlib parser recurses per nesting level; a hostile body must not become a 500.
        raise BadRequestError("body is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"body must be a JSON object with {form.fields}, or inputs")
    try:
        parsed = form.adapter.validate_python(data)
    except ValidationError as error:
        raise InvalidInputError(describe(error)) from None
    inputs = getattr(parsed, "inputs", None)
    if inputs is not None and len(inputs) > max_batch_size:
        raise InvalidInputError(
            f"too many inputs: {len(inputs)}, at most {max_batch_size} per request"
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
    task: str = Field(description="question-answering or text-classification.")
    inference_precision: str | None = Field(
        default=None,
        description="What the runtime computes the ops that are not INT8 in: f32, bf16 or f16.",
    )
    labels: list[str] | None = Field(
        default=None, description="Label names by class id (text classification only)."
    )
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    manifest: dict[str, Any] = Field(description="Summary of the published manifest.")
