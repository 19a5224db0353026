"""What the compression core needs from a task: question answering or text classification.

The core (fine-tuning loop, NNCF calibration, export, gate, publish) only sees this interface:
a task turns data into training batches, names the model's outputs, and scores a model given
as a function from input arrays to output arrays, so the FP32 torch model, the fake-quantized
model and the exported OpenVINO IR are scored by the same code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qatflow.core.tasks import QUESTION_ANSWERING, TEXT_CLASSIFICATION

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


# Each of core's tasks -> the class implementing it, named rather than imported: the
# implementations import this module (``Infer``), and torch with them.
TASK_CLASSES: dict[str, str] = {
    QUESTION_ANSWERING: "qatflow.training.question_answering:QuestionAnsweringTask",
    TEXT_CLASSIFICATION: "qatflow.training.classification:TextClassificationTask",
}


def task_class(name: str) -> Callable[[TrainingSettings, Any], Task]:
    """The implementation of one of ``TASK_CLASSES``, imported now."""
    if name not in TASK_CLASSES:
        raise ValueError(f"unsupported task {name!r}")
    module_name, _, class_name = TASK_CLASSES[name].partition(":")
    cls: Callable[[TrainingSettings, Any], Task] = getattr(
        importlib.import_module(module_name), class_name
    )
    return cls


def create_task(settings: TrainingSettings, tokenizer: Any) -> Task:
    return task_class(settings.task)(settings, tokenizer)
