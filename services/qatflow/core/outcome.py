"""How a training run ended, for machines: its exit code and a one-line JSON outcome.

``qatflow train --outcome-file FILE`` writes the outcome to FILE as it exits. The chart passes
the training container's ``terminationMessagePath``, so Kubernetes keeps it in the pod's status
(``state.terminated.message``) and ``qatflow status`` reads it from the API instead of parsing
the log. The exit codes are the ones the chart's ``podFailurePolicy`` fails the Job on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EXIT_PUBLISHED = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_GATE_FAILED = 3

# The documented meaning of each exit code (docs/training.md's table is this).
EXIT_CODES = {
    EXIT_PUBLISHED: "a version was published",
    EXIT_FAILED: "the job failed (missing data or model, export error, disk): nothing published",
    EXIT_BAD_CONFIG: (
        "the configuration is invalid (unknown key, bad value, unreadable file): nothing done"
    ),
    EXIT_GATE_FAILED: "the accuracy gate failed: nothing published",
}
# Exit codes that retrying cannot change: the chart fails the Job at once on these.
FAILURE_EXIT_CODES = (EXIT_FAILED, EXIT_BAD_CONFIG, EXIT_GATE_FAILED)

# Kubernetes keeps at most this many bytes of a container's termination message.
MESSAGE_LIMIT = 4096
_KIND = "qatflow.training.outcome/v1"


@dataclass(frozen=True)
class TrainingOutcome:
    exit_code: int
    # One line: what happened ("published bert-qa version 3 to ...", or the error).
    message: str
    model: str | None = None
    version: int | None = None
    # The published model's task (question-answering, text-classification).
    task: str | None = None
    # The accuracy gate's metric (f1, accuracy) and its value at each stage.
    metric: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    # The log's summary line: every stage's score and the deltas.
    summary: str | None = None

    @property
    def published(self) -> bool:
        return self.exit_code == EXIT_PUBLISHED

    def to_json(self) -> str:
        """One JSON line within Kubernetes' termination-message limit (the message is cut)."""
        data = {"kind": _KIND, **asdict(self)}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        excess = len(text.encode()) - MESSAGE_LIMIT
        if excess > 0:
            data["message"] = self.message[: max(0, len(self.message) - excess - 3)] + "..."
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return text

    @classmethod
    def from_json(cls, text: str | None) -> TrainingOutcome | None:
        """The outcome in ``text``, or None when it holds something else (e.g. the log tail
        Kubernetes falls back to when a container died before writing its outcome)."""
        try:
            data: Any = json.loads(text or "")
        except ValueError:
            return None
        if not isinstance(data, dict) or data.pop("kind", None) != _KIND:
            return None
        try:
            return cls(**data)
        except TypeError:
            return None

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")
