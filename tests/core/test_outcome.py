"""The training outcome: one JSON line that fits a Kubernetes termination message."""

from __future__ import annotations

from qatflow.core.outcome import (
    EXIT_GATE_FAILED,
    EXIT_PUBLISHED,
    MESSAGE_LIMIT,
    TrainingOutcome,
)


def test_an_outcome_reads_back_as_written(tmp_path):
    outcome = TrainingOutcome(
        EXIT_PUBLISHED,
        "published bert-qa version 2 to /models/bert-qa/2",
        model="bert-qa",
        version=2,
        task="question-answering",
        metric="f1",
        scores={"fp32": 80.12, "int8": 79.85},
        summary="qat | baseline f1 80.12 | ...",
    )
    outcome.write(tmp_path / "termination-log")

    text = (tmp_path / "termination-log").read_text()
    assert "\n" not in text
    assert TrainingOutcome.from_json(text) == outcome


def test_a_long_message_is_cut_to_the_kubernetes_limit():
    outcome = TrainingOutcome(EXIT_GATE_FAILED, "é" * 10_000, summary="s")

    text = outcome.to_json()

    assert len(text.encode()) <= MESSAGE_LIMIT
    read = TrainingOutcome.from_json(text)
    assert read is not None and read.message.endswith("...") and read.summary == "s"


def test_anything_else_is_not_an_outcome():
    """What Kubernetes keeps when the container died before writing (the end of its log)."""
    for text in (None, "", "12:00:01 INFO    step 3/9", '{"message": "not ours"}', "[1, 2]"):
        assert TrainingOutcome.from_json(text) is None
