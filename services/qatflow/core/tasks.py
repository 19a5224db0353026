"""The tasks a model is trained for and served as: each name defined once, here."""

from __future__ import annotations

from typing import Final, Literal

QUESTION_ANSWERING: Final = "question-answering"
TEXT_CLASSIFICATION: Final = "text-classification"
# The same names as a type, for settings fields (tests/core/test_tasks.py keeps the two equal).
Task = Literal["question-answering", "text-classification"]
TASKS: tuple[Task, ...] = (QUESTION_ANSWERING, TEXT_CLASSIFICATION)
