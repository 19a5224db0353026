"""What every backend shares: tokenization into stride windows and span post-processing.

A backend only turns padded int64 arrays into start/end logits; everything around that comes
from ``qatflow.core.qa`` so both runtimes give the same answers as training's evaluation.
"""

from __future__ import annotations

import dataclasses
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from qatflow.core import qa
from qatflow.core.artifacts import ModelVersion
from qatflow.serving.settings import ServeSettings

_WINDOWS_PER_INFERENCE = 16


@dataclass(frozen=True)
class Question:
    question: str
    context: str
    top_k: int = 1
    max_answer_len: int | None = None


class QuestionAnsweringBackend(ABC):
    """One loaded model version on one runtime. ``load`` blocks: call it off the event loop."""

    name: ClassVar[str]

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.version: ModelVersion | None = None
        self._tokenizer: Any = None
        # Fast tokenizers mutate their truncation state per call: one caller at a time.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    @abstractmethod
    def check_available(cls) -> None:
        """Raise ``BackendUnavailableError`` when the runtime cannot run here at all."""

    @property
    def ready(self) -> bool:
        return self.version is not None

    def load(self, version: ModelVersion) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(version.path)
        self._load_runtime(version)
        self.version = version

    def unload(self) -> None:
        self.version = None
        self._tokenizer = None
        self._unload_runtime()

    def predict(self, questions: Sequence[Question]) -> list[list[qa.Answer]]:
        """The best answers of each question; ``qa.QuestionTooLongError`` for a long question."""
        version = self.version
        if version is None:
            raise RuntimeError("predict() before load()")
        manifest = version.manifest
        with self._tokenizer_lock:
            features = qa.encode(
                self._tokenizer,
                [q.question for q in questions],
                [q.context for q in questions],
                max_length=int(manifest["max_seq_length"]),
                doc_stride=int(manifest["doc_stride"]),
            )
        arrays = qa.pad(features, self._tokenizer.pad_token_id)
        wanted = manifest.get("inputs") or list(arrays)
        start_logits, end_logits = self._run_in_chunks({name: arrays[name] for name in wanted})
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

    def _run_in_chunks(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        # A very long context makes many windows; bounded chunks bound the memory one request takes.
        total = next(iter(inputs.values())).shape[0]
        starts, ends = [], []
        for first in range(0, total, _WINDOWS_PER_INFERENCE):
            chunk = {
                name: array[first : first + _WINDOWS_PER_INFERENCE]
                for name, array in inputs.items()
            }
            start, end = self._logits(chunk)
            starts.append(start)
            ends.append(end)
        return np.concatenate(starts), np.concatenate(ends)

    @abstractmethod
    def _load_runtime(self, version: ModelVersion) -> None:
        """Compile the model for this runtime."""

    @abstractmethod
    def _unload_runtime(self) -> None:
        """Release the runtime's memory."""

    @abstractmethod
    def _logits(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """start_logits and end_logits, float32 [windows, sequence]; must be thread-safe."""
