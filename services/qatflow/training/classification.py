"""Text classification of a sentence or a sentence pair (SST-2 / MRPC style) for training."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from qatflow.core import classification
from qatflow.core.tasks import MODEL_INPUTS, TASK_OUTPUTS, TEXT_CLASSIFICATION
from qatflow.training.batching import length_grouped_batches
from qatflow.training.classification_data import Columns, load_classification_data
from qatflow.training.config import TrainingSettings
from qatflow.training.examples import ClassificationExample
from qatflow.training.task import Infer

log = logging.getLogger(__name__)


class TextClassificationTask:
    name = TEXT_CLASSIFICATION
    output_names = TASK_OUTPUTS[TEXT_CLASSIFICATION]
    headline_metric = "accuracy"

    def __init__(self, settings: TrainingSettings, tokenizer: Any) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        data = load_classification_data(
            settings.dataset_source,
            train_split=settings.train_split,
            eval_split=settings.eval_split,
            config=settings.dataset_config,
            columns=Columns(settings.text_column, settings.text_pair_column, settings.label_column),
            max_train=settings.max_train_samples,
            max_eval=settings.max_eval_samples,
            seed=settings.seed,
        )
        self.labels = data.labels
        self.text_pair = data.text_pair
        self.train_inputs = self._encode(data.train)
        self.train_labels = [example.label for example in data.train]
        self.eval_examples = data.eval
        self.eval_labels = np.array([example.label for example in data.eval])
        log.info(
            "data: %d train, %d eval %s, labels %s",
            len(data.train),
            len(data.eval),
            "sentence pairs" if self.text_pair else "sentences",
            ", ".join(self.labels),
        )

    def load_model(self, name_or_path: str) -> tuple[PreTrainedModel, bool]:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name_or_path,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: index for index, label in enumerate(self.labels)},
            ignore_mismatched_sizes=True,  # a head for another label count is replaced
            output_loading_info=True,
        )
        fresh = info["missing_keys"] or info.get("mismatched_keys")
        return model, not fresh

    def steps(self, epochs: float, batch_size: int) -> int:
        return max(1, math.ceil(len(self.train_inputs) * epochs / batch_size))

    def train_batches(self, epochs: float, batch_size: int, seed: int) -> Iterator[dict[str, Any]]:
        for indices in length_grouped_batches(
            [len(ids) for ids in self.train_inputs],
            self.steps(epochs, batch_size),
            batch_size,
            random.Random(seed),
        ):
            batch = self._tensors([self.train_inputs[i] for i in indices])
            batch["labels"] = torch.tensor([self.train_labels[i] for i in indices])
            yield batch

    def calibration_inputs(self, count: int) -> list[dict[str, Any]]:
        rng = random.Random(self.settings.seed)
        chosen = rng.sample(range(len(self.train_inputs)), min(count, len(self.train_inputs)))
        return [self._tensors([self.train_inputs[i]]) for i in chosen]

    def example_inputs(self) -> dict[str, Any]:
        return self._tensors(self.train_inputs[:2])

    def predict(self, infer: Infer, batch_size: int) -> np.ndarray:
        """Logits of every evaluation example, in order, encoded as the services encode."""
        logits = []
        for begin in range(0, len(self.eval_examples), batch_size):
            batch = self.eval_examples[begin : begin + batch_size]
            arrays = classification.encode(
                self.tokenizer,
                [example.text for example in batch],
                [example.text_pair or "" for example in batch] if self.text_pair else None,
                max_length=self.settings.max_seq_length,
            )
            logits.append(infer(arrays)[0])
        return np.concatenate(logits)

    def evaluate(self, infer: Infer, batch_size: int) -> dict[str, float]:
        predicted = self.predict(infer, batch_size).argmax(axis=-1)
        return classification_scores(predicted, self.eval_labels, len(self.labels))

    def evaluate_transfer(self, infer: Infer, batch_size: int) -> dict[str, float] | None:
        return None  # no hand-written transfer set for classification

    def manifest(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "max_seq_length": self.settings.max_seq_length,
            "inputs": list(MODEL_INPUTS),
            "outputs": list(self.output_names),
            "labels": list(self.labels),
            "text_pair": self.text_pair,
        }

    def _encode(self, examples: list[ClassificationExample]) -> list[dict[str, list[int]]]:
        """Token ids per example, truncated to max_seq_length (the longer text of a pair first)."""
        encoded = self.tokenizer(
            [example.text for example in examples],
            [example.text_pair or "" for example in examples] if self.text_pair else None,
            truncation="longest_first",
            max_length=self.settings.max_seq_length,
            return_token_type_ids=True,
        )
        return [{name: encoded[name][i] for name in MODEL_INPUTS} for i in range(len(examples))]

    def _arrays(self, inputs: list[dict[str, list[int]]]) -> dict[str, np.ndarray]:
        """Right-padded int64 arrays, as the serving side builds them."""
        width = max(len(item["input_ids"]) for item in inputs)
        pad = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        arrays = {name: np.full((len(inputs), width), pad[name], dtype=np.int64) for name in pad}
        for row, item in enumerate(inputs):
            for name in MODEL_INPUTS:
                arrays[name][row, : len(item[name])] = item[name]
        return arrays

    def _tensors(self, inputs: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(value) for name, value in self._arrays(inputs).items()}


def classification_scores(
    predicted: np.ndarray, expected: np.ndarray, num_labels: int
) -> dict[str, float]:
    """Accuracy in percent; for two labels also F1 of the positive class (id 1), as GLUE does."""
    scores: dict[str, float] = {
        "accuracy": 100.0 * float(np.mean(predicted == expected)),
        "samples": len(expected),
    }
    if num_labels == 2:
        true_positive = float(np.sum((predicted == 1) & (expected == 1)))
        predicted_positive = float(np.sum(predicted == 1))
        actual_positive = float(np.sum(expected == 1))
        denominator = predicted_positive + actual_positive
        scores["f1"] = 100.0 * 2 * true_positive / denominator if denominator else 0.0
    return scores
