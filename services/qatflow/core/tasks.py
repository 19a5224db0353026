"""The tasks a model is trained for and served as: each name defined once, here."""

from __future__ import annotations

QUESTION_ANSWERING = "question-answering"
TEXT_CLASSIFICATION = "text-classification"
TASKS = (QUESTION_ANSWERING, TEXT_CLASSIFICATION)
