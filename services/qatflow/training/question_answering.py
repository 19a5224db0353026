"""Extractive question answering (SQuAD format) for the training job."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering, PreTrainedModel

from qatflow.core import qa
from qatflow.core.squad import squad_scores
from qatflow.core.tasks import MODEL_INPUTS, QUESTION_ANSWERING, TASK_OUTPUTS
from qatflow.training.batching import length_grouped_batches
from qatflow.training.config import EMBEDDED_TRANSFER_DATASET, TrainingSettings
from qatflow.training.examples import QAExample
from qatflow.training.qa_data import load_examples
from qatflow.training.task import Infer

log = logging.getLogger(__name__)


class QuestionAnsweringTask:
    name = QUESTION_ANSWERING
    output_names = TASK_OUTPUTS[QUESTION_ANSWERING]
    headline_metric = "f1"

    def __init__(self, settings: TrainingSettings, tokenizer: Any) -> None:
        self.settings = settings
        self.tokenizer = tokenizer

        def load(split: str, limit: int | None) -> list[QAExample]:
            return load_examples(
                settings.dataset_source,
                split,
                config=settings.dataset_config,
                limit=limit,
                seed=settings.seed,
            )

        train = load(settings.train_split, settings.max_train_samples)
        self.eval_examples = load(settings.eval_split, settings.max_eval_samples)
        self.train_features = self._label(train)
        self.eval_features = self._encode(self.eval_examples)
        self.transfer_examples = (
            load_examples(EMBEDDED_TRANSFER_DATASET, "validation", config=None, limit=None, seed=0)
            if settings.transfer_eval
            else []
        )
        # the tokenizer refuses an empty batch
        self.transfer_features = (
            self._encode(self.transfer_examples) if self.transfer_examples else []
        )
        log.info(
            "data: %d train examples -> %d windows, %d eval examples -> %d windows, "
            "%d transfer questions",
            len(train),
            len(self.train_features),
            len(self.eval_examples),
            len(self.eval_features),
            len(self.transfer_examples),
        )

    def load_model(self, name_or_path: str) -> tuple[PreTrainedModel, bool]:
        model, info = AutoModelForQuestionAnswering.from_pretrained(
            name_or_path, output_loading_info=True
        )
        fresh = [key for key in info["missing_keys"] if key.startswith("qa_outputs")]
        return model, not fresh

    def steps(self, epochs: float, batch_size: int) -> int:
        return max(1, math.ceil(len(self.train_features) * epochs / batch_size))

    def train_batches(self, epochs: float, batch_size: int, seed: int) -> Iterator[dict[str, Any]]:
        for indices in length_grouped_batches(
            [len(feature.input_ids) for feature, _, _ in self.train_features],
            self.steps(epochs, batch_size),
            batch_size,
            random.Random(seed),
        ):
            chosen = [self.train_features[i] for i in indices]
            batch = self._tensors([feature for feature, _, _ in chosen])
            batch["start_positions"] = torch.tensor([start for _, start, _ in chosen])
            batch["end_positions"] = torch.tensor([end for _, _, end in chosen])
            yield batch

    def calibration_inputs(self, count: int) -> list[dict[str, Any]]:
        rng = random.Random(self.settings.seed)
        chosen = rng.sample(self.train_features, min(count, len(self.train_features)))
        return [self._tensors([feature]) for feature, _, _ in chosen]

    def example_inputs(self) -> dict[str, Any]:
        return self._tensors([feature for feature, _, _ in self.train_features[:2]])

    def evaluate(self, infer: Infer, batch_size: int) -> dict[str, float]:
        return self._score(infer, batch_size, self.eval_examples, self.eval_features)

    def evaluate_transfer(self, infer: Infer, batch_size: int) -> dict[str, float] | None:
        if not self.transfer_examples:
            return None
        return self._score(infer, batch_size, self.transfer_examples, self.transfer_features)

    def _score(
        self,
        infer: Infer,
        batch_size: int,
        examples: list[QAExample],
        features: list[qa.Feature],
    ) -> dict[str, float]:
        """SQuAD EM/F1 of the best span over every window of each example.

        Windows run in batches of similar length (long contexts' full windows together), which
        pads far less than batches in example order; the logits go back in window order."""
        width = max(len(f.input_ids) for f in features)
        starts = np.full((len(features), width), -1e4, dtype=np.float32)
        ends = np.full((len(features), width), -1e4, dtype=np.float32)
        order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            arrays = qa.pad([features[i] for i in rows], self.tokenizer.pad_token_id)
            start, end = infer(arrays)
            starts[rows, : start.shape[1]] = start
            ends[rows, : end.shape[1]] = end
        answers = qa.best_answers(
            features,
            starts,
            ends,
            [example.context for example in examples],
            max_answer_len=self.settings.max_answer_length,
        )
        predictions = [best[0].answer for best in answers]
        return squad_scores(predictions, [example.answers for example in examples])

    def manifest(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "max_seq_length": self.settings.max_seq_length,
            "doc_stride": self.settings.doc_stride,
            "max_answer_length": self.settings.max_answer_length,
            "inputs": list(MODEL_INPUTS),
            "outputs": list(self.output_names),
        }

    def _encode(self, examples: list[QAExample]) -> list[qa.Feature]:
        return qa.encode(
            self.tokenizer,
            [example.question for example in examples],
            [example.context for example in examples],
            max_length=self.settings.max_seq_length,
            doc_stride=self.settings.doc_stride,
        )

    def _label(self, examples: list[QAExample]) -> list[tuple[qa.Feature, int, int]]:
        """Token positions of the first answer in each window; [CLS] (0) where it is not inside."""
        labelled = []
        for feature in self._encode(examples):
            example = examples[feature.example]
            first = example.answer_starts[0]
            last = first + len(example.answers[0])
            start = end = 0
            spans = [(i, span) for i, span in enumerate(feature.offsets) if span is not None]
            if spans and spans[0][1][0] <= first and spans[-1][1][1] >= last:
                start = next(i for i, (s, e) in spans if s <= first < e or s >= first)
                end = next(i for i, (s, e) in reversed(spans) if s < last <= e or e <= last)
            labelled.append((feature, start, end))
        return labelled

    def _tensors(self, features: list[qa.Feature]) -> dict[str, torch.Tensor]:
        arrays = qa.pad(features, self.tokenizer.pad_token_id)
        return {name: torch.from_numpy(arrays[name]) for name in MODEL_INPUTS}
