"""One example of each task, as the embedded generators make it and the loaders return it.

Both import this module and neither the other, so a loader can call its generator directly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]


@dataclass(frozen=True)
class ClassificationExample:
    text: str
    text_pair: str | None
    label: int
