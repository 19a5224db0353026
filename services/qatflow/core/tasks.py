"""The tasks a model is trained for and served as: each name defined once, here."""

from __future__ import annotations

from typing import Final, Literal

QUESTION_ANSWERING: Final = "question-answering"
TEXT_CLASSIFICATION: Final = "text-classification"
# The same names as a type, for settings fields (tests/core/test_tasks.py keeps the two equal).
Task = Literal["question-answering", "text-classification"]
TASKS: tuple[Task, ...] = (QUESTION_ANSWERING, TEXT_CLASSIFICATION)

# What a published model of either task takes, and what each task's model gives back: the
# names in its ONNX, its IR, its manifest and the gRPC contract.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TASK_OUTPUTS: dict[str, tuple[str, ...]] = {
    QUESTION_ANSWERING: ("start_logits", "end_logits"),
    TEXT_CLASSIFICATION: ("logits",),
}
