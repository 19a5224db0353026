"""What the compression core needs from a task: question answering or text classification.

The core (fine-tuning loop, NNCF calibration, export, gate, publish) only sees this interface:
a task turns data into training batches, names the model's outputs, and scores a model given
as a function from input arrays to output arrays, so the FP32 torch model, the fake-quantized
model and the exported OpenVINO IR are scored by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from qatflow.training.config import TrainingSettings

# A model as the evaluator sees it: named int64 input arrays -> output arrays in output order.
Infer = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


class Task(Protocol):
    name: str

    @property
    def output_names(self) -> tuple[str, ...]: ...

    headline_metric: str  # the metric the accuracy gate compares, higher is better

    def load_model(self, name_or_path: str) -> tuple[PreTrainedModel, bool]:
        """The model and whether its task head was already trained."""
        ...

    def train_batches(self, epochs: float, batch_size: int, seed: int) -> Iterator[dict[str, Any]]:
        """Shuffled training batches of tensors, labels included; ``epochs`` may be fractional."""
        ...

    def steps(self, epochs: float, batch_size: int) -> int: ...

    def calibration_inputs(self, count: int) -> list[dict[str, Any]]:
        """Input-only batches of tensors for ``nncf.quantize``."""
        ...

    def example_inputs(self) -> dict[str, Any]:
        """One small batch of input tensors to trace the model for export."""
        ...

    def evaluate(self, infer: Infer, batch_size: int) -> dict[str, float]: ...

    def evaluate_transfer(self, infer: Infer, batch_size: int) -> dict[str, float] | None:
        """Scores on the task's transfer set (hand-written text unlike the training data), or
        None when it has none."""
        ...

    def manifest(self) -> dict[str, Any]:
        """Task fields of the published manifest (sequence length, labels...)."""
        ...


def create_task(settings: TrainingSettings, tokenizer: Any) -> Task:
    if settings.task == "question-answering":
        from qatflow.training.question_answering import QuestionAnsweringTask

        return QuestionAnsweringTask(settings, tokenizer)
    if settings.task == "text-classification":
        from qatflow.training.classification import TextClassificationTask

        return TextClassificationTask(settings, tokenizer)
    raise ValueError(f"unsupported task {settings.task!r}")
