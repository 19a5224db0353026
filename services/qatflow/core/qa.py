"""Extractive question answering: tokenization into stride windows and span post-processing.

One implementation, shared by training (evaluation), both HTTP services and the gRPC client,
so the same model gives the same answer through every path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Room the tokenizer needs beside the question in every window: [CLS] q [SEP] c [SEP].
_SPECIAL_TOKENS = 3


class QuestionTooLongError(ValueError):
    """The question leaves no room for the context in a window of the model's length."""


@dataclass(frozen=True)
class Feature:
    """One window of one (question, context) pair, ready for the model."""

    example: int
    input_ids: list[int]
    attention_mask: list[int]
    token_type_ids: list[int]
    # Character span in the context for context tokens; None for question and special tokens.
    offsets: list[tuple[int, int] | None]


@dataclass(frozen=True)
class Answer:
    answer: str
    score: float
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "score": self.score, "start": self.start, "end": self.end}


def max_question_tokens(max_length: int, doc_stride: int) -> int:
    """Longest question (in tokens) that still leaves each window more context than the stride."""
    return max_length - doc_stride - _SPECIAL_TOKENS - 1


def encode(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_length: int,
    doc_stride: int,
) -> list[Feature]:
    """Split each context into overlapping windows of at most ``max_length`` tokens."""
    limit = max_question_tokens(max_length, doc_stride)
    question_lengths = tokenizer(list(questions), add_special_tokens=False)["input_ids"]
    for index, ids in enumerate(question_lengths):
        if len(ids) > limit:
            raise QuestionTooLongError(
                f"question {index} has {len(ids)} tokens; at most {limit} fit a window of "
                f"{max_length} tokens with a stride of {doc_stride}"
            )
    encoded = tokenizer(
        list(questions),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        padding=False,
    )
    features = []
    for index in range(len(encoded["input_ids"])):
        sequence_ids = encoded.sequence_ids(index)
        offsets = [
            (int(span[0]), int(span[1])) if sequence_ids[token] == 1 else None
            for token, span in enumerate(encoded["offset_mapping"][index])
        ]
        features.append(
            Feature(
                example=int(encoded["overflow_to_sample_mapping"][index]),
                input_ids=list(encoded["input_ids"][index]),
                attention_mask=list(encoded["attention_mask"][index]),
                token_type_ids=list(encoded["token_type_ids"][index]),
                offsets=offsets,
            )
        )
    return features


def pad(
    features: Sequence[Feature], pad_token_id: int, length: int | None = None
) -> dict[str, np.ndarray]:
    """Stack windows into int64 arrays, padded to the longest window (or to ``length``)."""
    width = max(len(f.input_ids) for f in features) if length is None else length
    arrays = {
        "input_ids": np.full((len(features), width), pad_token_id, dtype=np.int64),
        "attention_mask": np.zeros((len(features), width), dtype=np.int64),
        "token_type_ids": np.zeros((len(features), width), dtype=np.int64),
    }
    for row, feature in enumerate(features):
        size = len(feature.input_ids)
        arrays["input_ids"][row, :size] = feature.input_ids
        arrays["attention_mask"][row, :size] = feature.attention_mask
        arrays["token_type_ids"][row, :size] = feature.token_type_ids
    return arrays


def best_answers(
    features: Sequence[Feature],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    contexts: Sequence[str],
    *,
    top_k: int = 1,
    max_answer_len: int = 30,
) -> list[list[Answer]]:
    """The ``top_k`` best spans of each context, scored as P(start) * P(end).

    Probabilities are a softmax over the context tokens of each window, as the Hugging Face
    pipeline computes them; spans from every window of a context compete together.
    """
    candidates: list[dict[tuple[int, int], float]] = [{} for _ in contexts]
    width = max(max_answer_len, 1)
    for row, feature in enumerate(features):
        context_tokens = [token for token, span in enumerate(feature.offsets) if span is not None]
        if not context_tokens:
            continue
        # Only the context tokens can start or end a span: score the band of spans of at most
        # ``max_answer_len`` tokens from each start, not every (start, end) pair of the window.
        first, last = context_tokens[0], context_tokens[-1] + 1
        keep = np.array([span is not None for span in feature.offsets[first:last]])
        start = _masked_softmax(np.asarray(start_logits[row, first:last], np.float64), keep)
        end = _masked_softmax(np.asarray(end_logits[row, first:last], np.float64), keep)
        ends = np.lib.stride_tricks.sliding_window_view(np.pad(end, (0, width - 1)), width)
        scores = (start[:, None] * ends).ravel()  # [start, length - 1]
        top = min(max(top_k, 1) * 4, scores.size)
        best = np.argpartition(scores, -top)[-top:]  # the top spans, without a full sort
        best = best[np.argsort(scores[best])[::-1]]
        found = candidates[feature.example]
        for flat in best:
            score = float(scores[flat])
            if score <= 0.0:
                break
            begin, length = divmod(int(flat), width)
            opening, closing = (
                feature.offsets[first + begin],
                feature.offsets[first + begin + length],
            )
            span = (opening[0], closing[1])  # type: ignore[index]
            found[span] = max(score, found.get(span, 0.0))
    answers = []
    for context, found in zip(contexts, candidates, strict=True):
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        answers.append(
            [Answer(context[s:e], score, s, e) for (s, e), score in ranked]
            or [Answer("", 0.0, 0, 0)]
        )
    return answers


def _masked_softmax(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    masked = np.where(keep, logits, -np.inf)
    masked = masked - masked.max()
    weights = np.exp(masked)
    return weights / weights.sum()
