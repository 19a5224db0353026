"""Text classification: tokenization into one truncated window and softmax over the labels.

One implementation, shared by both HTTP services, the gRPC client and training's evaluation,
so the same model gives the same label and score through every path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qatflow.core.tasks import MODEL_INPUTS, TEXT_CLASSIFICATION

TASK = TEXT_CLASSIFICATION


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


def labels_of(manifest: Mapping[str, Any]) -> list[str]:
    """Label names by class id, as the published manifest lists them."""
    labels = manifest.get("labels")
    if not isinstance(labels, list) or not labels:
        raise ValueError("a text-classification manifest must list its labels")
    return [str(label) for label in labels]


def takes_text_pairs(manifest: Mapping[str, Any]) -> bool:
    """Whether the model was trained on text pairs (the manifest's ``text_pair``)."""
    return bool(manifest.get("text_pair", False))


def text_pair_mismatch(takes_pairs: bool, has_pair: bool) -> str | None:
    """What is wrong with an input for the model, completing "this model ...": a single text
    for a text-pair model, or a pair for a single-text model. None when it fits."""
    if takes_pairs and not has_pair:
        return "classifies text pairs; give text_pair as well"
    if not takes_pairs and has_pair:
        return "classifies single texts; leave out text_pair"
    return None


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    text_pairs: Sequence[str] | None = None,
    *,
    max_length: int,
) -> dict[str, np.ndarray]:
    """int64 arrays padded to the longest input; text past ``max_length`` tokens is cut off."""
    encoded = tokenizer(
        list(texts),
        list(text_pairs) if text_pairs is not None else None,
        truncation=True,  # a pair loses tokens from its longer side first
        max_length=max_length,
        padding="longest",
        return_token_type_ids=True,
        return_tensors="np",
    )
    return {name: np.asarray(encoded[name], dtype=np.int64) for name in MODEL_INPUTS}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities of float logits ``[batch, labels]``, computed in float64."""
    shifted = np.asarray(logits, np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def predictions(
    logits: np.ndarray, labels: Sequence[str], *, top_k: int = 1
) -> list[list[Prediction]]:
    """The ``top_k`` most probable labels of each row, best first (all of them at most)."""
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ValueError(f"logits of shape {list(logits.shape)} do not match {len(labels)} labels")
    probabilities = softmax(logits)
    ranked = np.argsort(-probabilities, axis=-1, kind="stable")[:, : max(top_k, 1)]
    return [
        [Prediction(labels[int(index)], float(row[index])) for index in order]
        for row, order in zip(probabilities, ranked, strict=True)
    ]
