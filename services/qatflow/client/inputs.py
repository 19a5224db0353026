"""Questions to ask, from the command line or a CSV / JSONL file of question, context."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from qatflow.client.errors import BadInputError


@dataclass(frozen=True)
class QuestionPair:
    question: str
    context: str


def read_pairs(path: Path) -> list[QuestionPair]:
    """Rows of ``question`` and ``context``: CSV with a header, or JSON Lines (.jsonl/.ndjson)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"input file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"cannot read input file {path}: {error}") from None
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        pairs = _from_jsonl(text, path)
    elif suffix in {".csv", ".tsv"}:
        pairs = _from_csv(text, path, "\t" if suffix == ".tsv" else ",")
    else:
        raise BadInputError(f"{path}: use a .csv or .jsonl file of question,context rows")
    if not pairs:
        raise BadInputError(f"{path} holds no question")
    return pairs


def checked_pair(question: object, context: object, where: str) -> QuestionPair:
    if not isinstance(question, str) or not question.strip():
        raise BadInputError(f"{where}: empty or missing question")
    if not isinstance(context, str) or not context.strip():
        raise BadInputError(f"{where}: empty or missing context")
    return QuestionPair(question, context)


def _from_csv(text: str, path: Path, delimiter: str) -> list[QuestionPair]:
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "question" not in columns or "context" not in columns:
        raise BadInputError(
            f"{path}: the header must name the columns question and context "
            f"(found {reader.fieldnames or 'none'})"
        )
    try:
        return [
            checked_pair(row[columns["question"]], row[columns["context"]], f"{path}:{line}")
            for line, row in enumerate(reader, start=2)
        ]
    except csv.Error as error:
        raise BadInputError(f"{path}: not valid CSV: {error}") from None


def _from_jsonl(text: str, path: Path) -> list[QuestionPair]:
    pairs = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadInputError(f"{path}:{line}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise BadInputError(f"{path}:{line}: expected an object with question and context")
        pairs.append(checked_pair(row.get("question"), row.get("context"), f"{path}:{line}"))
    return pairs
