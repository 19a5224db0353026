"""Question-answering examples: the embedded generator, the hand-written transfer set, local
SQuAD files or the hub."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from qatflow.training import synthetic_qa
from qatflow.training.config import EMBEDDED_QA_DATASET, EMBEDDED_TRANSFER_DATASET
from qatflow.training.data_sources import (
    EMBEDDED_PREFIX,
    EMBEDDED_SIZES,
    DataError,
    load_hub,
    read_text,
    split_file,
)
from qatflow.training.examples import QAExample

_TRANSFER_FILE = "transfer_qa.json"  # the hand-written set, shipped in this package


def load_examples(
    dataset: str, split: str, *, config: str | None, limit: int | None, seed: int
) -> list[QAExample]:
    """The first ``limit`` examples of ``split``; checks every answer lies in its context."""
    if dataset.startswith(EMBEDDED_PREFIX):
        examples = _embedded(dataset, split, limit, seed)
    elif Path(dataset).exists():
        examples = _local(Path(dataset), split)
    else:
        examples = [_from_record(record) for record in load_hub(dataset, split, config)]
    examples = examples[:limit] if limit else examples
    if not examples:
        raise DataError(f"split {split!r} of {dataset!r} holds no examples")
    return examples


def _embedded(dataset: str, split: str, limit: int | None, seed: int) -> list[QAExample]:
    if dataset == EMBEDDED_TRANSFER_DATASET:
        if split != "validation":
            raise DataError(
                f"{EMBEDDED_TRANSFER_DATASET} has one split, 'validation', not {split!r}"
            )
        return _local(Path(str(importlib.resources.files(__package__) / _TRANSFER_FILE)), split)
    if dataset != EMBEDDED_QA_DATASET:
        raise DataError(
            f"unknown embedded data set {dataset!r}; "
            f"available: {EMBEDDED_QA_DATASET}, {EMBEDDED_TRANSFER_DATASET}"
        )
    if split not in EMBEDDED_SIZES:
        raise DataError(f"{EMBEDDED_QA_DATASET} has splits {sorted(EMBEDDED_SIZES)}, not {split!r}")
    return synthetic_qa.generate(
        split, min(limit or EMBEDDED_SIZES[split], EMBEDDED_SIZES[split]), seed
    )


def _local(path: Path, split: str) -> list[QAExample]:
    if path.is_dir():
        path = split_file(path, split, ("json", "jsonl"))
    text = read_text(path)
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = _flatten_squad(json.loads(text))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{path} is not SQuAD-format JSON/JSONL: {error}") from None
    return [_from_record(record, source=str(path)) for record in records]


def _flatten_squad(data: Any) -> list[dict[str, Any]]:
    """The nested SQuAD v1.1 file (data/paragraphs/qas), or an already flat list."""
    if isinstance(data, list):
        return data
    records = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                records.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": {
                            "text": [a["text"] for a in qa["answers"]],
                            "answer_start": [a["answer_start"] for a in qa["answers"]],
                        },
                    }
                )
    return records


def _from_record(record: dict[str, Any], source: str = "data set") -> QAExample:
    try:
        answers = record["answers"]
        texts = list(answers["text"])
        starts = [int(s) for s in answers["answer_start"]]
        example = QAExample(
            id=str(record.get("id", "")),
            question=str(record["question"]).strip(),
            context=str(record["context"]),
            answers=texts,
            answer_starts=starts,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{source}: record without question/context/answers: {error}") from None
    for text, start in zip(example.answers, example.answer_starts, strict=True):
        if example.context[start : start + len(text)] != text:
            raise DataError(f"{source}: answer {text!r} of {example.id!r} is not at {start}")
    if not example.answers:
        raise DataError(f"{source}: example {example.id!r} has no answer")
    return example
