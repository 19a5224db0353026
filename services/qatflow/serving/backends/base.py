"""What every backend shares: tokenization and post-processing of both tasks.

A backend only turns padded int64 arrays into the model's named outputs; everything around that
comes from ``qatflow.core.qa`` (question answering) or ``qatflow.core.classification`` (text
classification), so both runtimes give the same results as training's evaluation.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import queue
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from qatflow.core import classification, qa
from qatflow.core.artifacts import ModelVersion
from qatflow.core.backends import ServingBackend
from qatflow.core.tasks import QUESTION_ANSWERING, TASK_OUTPUTS, TASKS, TEXT_CLASSIFICATION
from qatflow.serving.batching import Batcher, BatchObserver
from qatflow.serving.settings import ServeSettings

# The outputs each task's model has, when an older manifest does not name them.

log = logging.getLogger("qatflow.serving")


@dataclass(frozen=True)
class Question:
    question: str
    context: str
    top_k: int = 1
    max_answer_len: int | None = None


@dataclass(frozen=True)
class Text:
    """One text (or text pair) to classify."""

    text: str
    text_pair: str | None = None
    top_k: int = 1


class WrongTaskError(ValueError):
    """The loaded model does the other task."""

    def __init__(self, served: str, asked: str) -> None:
        super().__init__(f"this service serves a {served} model, not {asked}")
        self.served = served
        self.asked = asked


class TextPairError(ValueError):
    """A text pair sent to a single-text model, or a single text to a text-pair model."""


class ModelBackend(ABC):
    """One loaded model version on one runtime, of whichever task its manifest names.

    ``load`` blocks: call it off the event loop.
    """

    name: ClassVar[ServingBackend]

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.version: ModelVersion | None = None
        self.labels: list[str] = []
        self.inference_precision: str | None = None
        """What the runtime computes the ops that are not INT8 in, once loaded (see
        ``qatflow.core.precision``)."""
        self.parallel_inferences = 1
        """Inferences the runtime runs side by side, set by ``_load_runtime`` (OpenVINO's
        OPTIMAL_NUMBER_OF_INFER_REQUESTS: 1 with the LATENCY hint, one per stream with
        THROUGHPUT); the batcher keeps that many running."""
        self.observe_batch: BatchObserver | None = None
        """Told the windows of every inference and how long its requests waited (metrics)."""
        self._batcher: Batcher | None = None
        self._tokenizer: Any = None
        # A fast tokenizer mutates its truncation state on every call, so one serves one caller
        # at a time ("Already borrowed" otherwise): concurrent requests take a copy each.
        self._tokenizers: queue.SimpleQueue[Any] = queue.SimpleQueue()

    @classmethod
    @abstractmethod
    def check_available(cls) -> None:
        """Raise ``BackendUnavailableError`` when the runtime cannot run here at all."""

    @property
    def ready(self) -> bool:
        return self.version is not None

    @property
    def task(self) -> str | None:
        return self.version.task if self.version is not None else None

    def load(self, version: ModelVersion) -> None:
        if version.task not in TASKS:
            raise ValueError(f"unsupported task {version.task!r} (this service runs {TASKS})")
        labels = (
            classification.labels_of(version.manifest)
            if version.task == TEXT_CLASSIFICATION
            else []
        )
        self._tokenizer = version.tokenizer()
        self._tokenizers.put(self._tokenizer)
        self._load_runtime(version)
        if self.settings.batching:
            self._batcher = Batcher(
                self._infer,
                max_windows=self.settings.batch_max_windows,
                max_delay=self.settings.batch_max_delay_ms / 1000,
                runners=self.parallel_inferences,
                pad_values={"input_ids": self._tokenizer.pad_token_id},
                # Per-token outputs are cut back to each request's own width.
                sequence_outputs=TASK_OUTPUTS[QUESTION_ANSWERING],
                observe=self.observe_batch,
            )
        self.labels = labels
        self.version = version
        log.info(
            "%s compiled %s version %d: INT8 layers in int8, the rest in %s "
            "(inference_precision=%s)",
            self.name,
            version.name,
            version.version,
            self.inference_precision,
            self.settings.inference_precision,
        )

    def unload(self) -> None:
        self.version = None
        self._tokenizer = None
        self._tokenizers = queue.SimpleQueue()
        self.inference_precision = None
        self._batcher = None
        self._unload_runtime()

    def answer(self, questions: Sequence[Question]) -> list[list[qa.Answer]]:
        """The best answers of each question; ``qa.QuestionTooLongError`` for a long question."""
        manifest = self._manifest_for(QUESTION_ANSWERING)
        with self._tokenizer_in_use() as tokenizer:
            features = qa.encode(
                tokenizer,
                [q.question for q in questions],
                [q.context for q in questions],
                max_length=int(manifest["max_seq_length"]),
                doc_stride=int(manifest["doc_stride"]),
            )
            pad_id = tokenizer.pad_token_id
        outputs = self._run_model(qa.pad(features, pad_id))
        start_logits, end_logits = outputs["start_logits"], outputs["end_logits"]
        contexts = [q.context for q in questions]
        answers: list[list[qa.Answer]] = []
        # Questions differ in top_k and max_answer_len, so post-process each on its own windows.
        for index, question in enumerate(questions):
            rows = [row for row, feature in enumerate(features) if feature.example == index]
            local = [dataclasses.replace(features[row], example=0) for row in rows]
            answers.extend(
                qa.best_answers(
                    local,
                    start_logits[rows],
                    end_logits[rows],
                    [contexts[index]],
                    top_k=question.top_k,
                    max_answer_len=question.max_answer_len or self.settings.max_answer_length,
                )
            )
        return answers

    def classify(self, texts: Sequence[Text]) -> list[list[classification.Prediction]]:
        """The most probable labels of each text; text past max_seq_length is truncated."""
        manifest = self._manifest_for(TEXT_CLASSIFICATION)
        pairs = _text_pairs(texts, classification.takes_text_pairs(manifest))
        with self._tokenizer_in_use() as tokenizer:
            arrays = classification.encode(
                tokenizer,
                [item.text for item in texts],
                pairs,
                max_length=int(manifest["max_seq_length"]),
            )
        logits = self._run_model(arrays)["logits"]
        return [
            classification.predictions(logits[row : row + 1], self.labels, top_k=item.top_k)[0]
            for row, item in enumerate(texts)
        ]

    @contextlib.contextmanager
    def _tokenizer_in_use(self) -> Iterator[Any]:
        """A tokenizer no other thread uses meanwhile: a free copy, or a new one (at most one per
        request served at once)."""
        try:
            tokenizer = self._tokenizers.get_nowait()
        except queue.Empty:
            tokenizer = copy.deepcopy(self._tokenizer)
        try:
            yield tokenizer
        finally:
            self._tokenizers.put(tokenizer)

    def _manifest_for(self, task: str) -> dict[str, Any]:
        version = self.version
        if version is None:
            raise RuntimeError("inference before load()")
        if version.task != task:
            raise WrongTaskError(version.task, task)
        return version.manifest

    def _run_model(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs for every row: through the batcher, or in chunks of at most
        ``batch_max_windows`` rows (a very long context makes many windows; bounded chunks bound
        the memory one request takes)."""
        assert self.version is not None
        wanted = self.version.manifest.get("inputs") or list(arrays)
        inputs = {name: arrays[name] for name in wanted}
        if self._batcher is not None:
            return self._batcher.run(inputs)
        total, step = len(next(iter(inputs.values()))), self.settings.batch_max_windows
        chunks = []
        for first in range(0, total, step):
            chunk = {name: array[first : first + step] for name, array in inputs.items()}
            if self.observe_batch is not None:
                self.observe_batch(len(chunk[wanted[0]]), ())
            chunks.append(self._infer(chunk))
        return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}

    def output_names(self, version: ModelVersion) -> list[str]:
        """The outputs to read: the manifest's, or the task's usual ones."""
        return [str(name) for name in version.manifest.get("outputs") or TASK_OUTPUTS[version.task]]

    @abstractmethod
    def _load_runtime(self, version: ModelVersion) -> None:
        """Compile the model for this runtime."""

    @abstractmethod
    def _unload_runtime(self) -> None:
        """Release the runtime's memory."""

    @abstractmethod
    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs by name, float32 arrays; must be thread-safe."""


def _text_pairs(texts: Sequence[Text], model_takes_pairs: bool) -> list[str] | None:
    """The second texts, checked against what the model was trained on."""
    for index, item in enumerate(texts):
        mismatch = classification.text_pair_mismatch(model_takes_pairs, item.text_pair is not None)
        if mismatch is not None:
            raise TextPairError(f"input {index}: this model {mismatch}")
    return [str(item.text_pair) for item in texts] if model_takes_pairs else None
