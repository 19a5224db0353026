"""What to send, from the command line or a CSV / JSONL file.

A file of ``question,context`` rows asks a question-answering model; a file of ``text`` (and
``text_pair``) rows asks a text-classification model.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from qatflow.client.errors import BadInputError
from qatflow.core.tasks import QUESTION_ANSWERING, TEXT_CLASSIFICATION


@dataclass(frozen=True)
class QuestionPair:
    question: str
    context: str


@dataclass(frozen=True)
class TextInput:
    text: str
    text_pair: str | None = None


Inputs = list[QuestionPair] | list[TextInput]


def read_pairs(path: Path) -> list[QuestionPair]:
    """Rows of ``question`` and ``context``: CSV with a header, or JSON Lines (.jsonl/.ndjson)."""
    task, rows = read_inputs(path)
    if task != QUESTION_ANSWERING:
        raise BadInputError(f"{path}: expected question,context rows, found text rows")
    return rows  # type: ignore[return-value]


def read_inputs(path: Path) -> tuple[str, Inputs]:
    """The task the file's columns ask for, and its rows."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"input file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"cannot read input file {path}: {error}") from None
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        records = _from_jsonl(text, path)
    elif suffix in {".csv", ".tsv"}:
        records = _from_csv(text, path, "\t" if suffix == ".tsv" else ",")
    else:
        raise BadInputError(
            f"{path}: use a .csv or .jsonl file of question,context or text[,text_pair] rows"
        )
    columns = set(records[0][1]) if records else set()
    task = TEXT_CLASSIFICATION if "text" in columns and "question" not in columns else None
    if task == TEXT_CLASSIFICATION:
        pairs = "text_pair" in columns
        found: Inputs = [
            checked_text(row.get("text"), row.get("text_pair") if pairs else None, where)
            for where, row in records
        ]
    else:
        task = QUESTION_ANSWERING
        found = [checked_pair(row.get("question"), row.get("context"), w) for w, row in records]
    if not found:
        raise BadInputError(f"{path} holds no question or text")
    return task, found


def checked_pair(question: object, context: object, where: str) -> QuestionPair:
    if not isinstance(question, str) or not question.strip():
        raise BadInputError(f"{where}: empty or missing question")
    if not isinstance(context, str) or not context.strip():
        raise BadInputError(f"{where}: empty or missing context")
    return QuestionPair(question, context)


def checked_text(text: object, text_pair: object, where: str) -> TextInput:
    if not isinstance(text, str) or not text.strip():
        raise BadInputError(f"{where}: empty or missing text")
    if text_pair is not None and (not isinstance(text_pair, str) or not text_pair.strip()):
        raise BadInputError(f"{where}: empty text_pair")
    return TextInput(text, text_pair)


def _from_csv(text: str, path: Path, delimiter: str) -> list[tuple[str, dict[str, object]]]:
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if not ({"question", "context"} <= set(columns) or "text" in columns):
        raise BadInputError(
            f"{path}: the header must name the columns question and context, or text "
            f"(found {reader.fieldnames or 'none'})"
        )
    try:
        return [
            (f"{path}:{line}", {key: row[name] for key, name in columns.items()})
            for line, row in enumerate(reader, start=2)
        ]
    except csv.Error as error:
        raise BadInputError(f"{path}: not valid CSV: {error}") from None


def _from_jsonl(text: str, path: Path) -> list[tuple[str, dict[str, object]]]:
    records = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as error:
            raise BadInputError(f"{path}:{line}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise BadInputError(
                f"{path}:{line}: expected an object with question and context, or text"
            )
        records.append((f"{path}:{line}", row))
    return records
