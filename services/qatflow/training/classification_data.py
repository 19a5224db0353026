"""Text-classification examples from the embedded generators, local files or the hub.

A label is an integer id or a name. Names get ids in sorted order, fixed by the training
split; integer ids are kept (hub ``ClassLabel`` names are used when the data set has them).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qatflow.training import synthetic_classification
from qatflow.training.data_sources import (
    EMBEDDED_PREFIX,
    EMBEDDED_SIZES,
    DataError,
    load_hub,
    read_text,
    split_file,
)
from qatflow.training.examples import ClassificationExample

TEXT_COLUMNS = ("sentence", "text", "sentence1")
TEXT_PAIR_COLUMN = "sentence2"
EMBEDDED_SETS = ("embedded:synthetic-sentiment", "embedded:synthetic-paraphrase")
_FORMATS = ("jsonl", "json", "csv")


@dataclass(frozen=True)
class ClassificationData:
    train: list[ClassificationExample]
    eval: list[ClassificationExample]
    labels: list[str]  # label names by id
    text_pair: bool  # examples are sentence pairs


@dataclass(frozen=True)
class _Split:
    """One split as read: records, column names, label names of columns the source types."""

    records: list[dict[str, Any]]
    columns: list[str]
    label_names: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Columns:
    text: str | None = None  # None: the first of TEXT_COLUMNS present
    text_pair: str | None = None  # None: TEXT_PAIR_COLUMN if present, else single sentences
    label: str = "label"


def load_classification_data(
    dataset: str,
    *,
    train_split: str,
    eval_split: str,
    config: str | None = None,
    columns: Columns = Columns(),
    max_train: int | None = None,
    max_eval: int | None = None,
    seed: int = 42,
) -> ClassificationData:
    """Both splits with one label mapping; the first ``max_train`` / ``max_eval`` examples."""
    if dataset.startswith(EMBEDDED_PREFIX):
        return _embedded(dataset, train_split, eval_split, max_train, max_eval, seed)
    train = _read(dataset, train_split, config, max_train)
    evaluation = _read(dataset, eval_split, config, max_eval)
    text, text_pair = _text_columns(train.columns, columns, f"{dataset} {train_split}")
    for split, name in ((train, train_split), (evaluation, eval_split)):
        _require_columns(split.columns, [text, text_pair, columns.label], f"{dataset} {name}")
    train_labels = [record[columns.label] for record in train.records]
    labels = train.label_names.get(columns.label) or _label_names(
        train_labels, f"{dataset} {train_split}"
    )
    ids = {name: index for index, name in enumerate(labels)}
    seen = set(_label_ids(train_labels, ids, f"{dataset} {train_split}"))

    def examples(split: _Split, name: str) -> list[ClassificationExample]:
        where = f"{dataset} {name}"
        found = _label_ids([record[columns.label] for record in split.records], ids, where)
        unseen = sorted({labels[i] if i < len(labels) else str(i) for i in found if i not in seen})
        if unseen:
            raise DataError(f"{where}: labels {unseen} never occur in split {train_split!r}")
        return [
            ClassificationExample(
                _text(record, text, where),
                _text(record, text_pair, where) if text_pair else None,
                i,
            )
            for record, i in zip(split.records, found, strict=True)
        ]

    return ClassificationData(
        train=examples(train, train_split),
        eval=examples(evaluation, eval_split),
        labels=labels,
        text_pair=text_pair is not None,
    )


def _embedded(
    dataset: str,
    train_split: str,
    eval_split: str,
    max_train: int | None,
    max_eval: int | None,
    seed: int,
) -> ClassificationData:
    generators = {
        "embedded:synthetic-sentiment": (
            synthetic_classification.generate_sentiment,
            synthetic_classification.SENTIMENT_LABELS,
        ),
        "embedded:synthetic-paraphrase": (
            synthetic_classification.generate_paraphrase,
            synthetic_classification.PARAPHRASE_LABELS,
        ),
    }
    if dataset not in generators:
        raise DataError(
            f"unknown embedded data set {dataset!r} for text classification; "
            f"available: {', '.join(EMBEDDED_SETS)}"
        )
    generate, labels = generators[dataset]

    def split(name: str, limit: int | None) -> list[ClassificationExample]:
        if name not in EMBEDDED_SIZES:
            raise DataError(f"{dataset} has splits {sorted(EMBEDDED_SIZES)}, not {name!r}")
        size = EMBEDDED_SIZES[name]
        return generate(name, min(limit or size, size), seed)

    return ClassificationData(
        train=split(train_split, max_train),
        eval=split(eval_split, max_eval),
        labels=list(labels),
        text_pair=dataset == "embedded:synthetic-paraphrase",
    )


def _read(dataset: str, split: str, config: str | None, limit: int | None) -> _Split:
    path = Path(dataset)
    if path.is_dir():
        read = _local(path, split)
    elif path.exists():
        raise DataError(
            f"{dataset} is a file; give the directory that holds "
            f"{' / '.join(f'{split}.{ext}' for ext in _FORMATS)}"
        )
    else:
        read = _hub(dataset, split, config)
    records = read.records[:limit] if limit else read.records
    if not records:
        raise DataError(f"split {split!r} of {dataset!r} holds no examples")
    return _Split(records, read.columns, read.label_names)


def _local(directory: Path, split: str) -> _Split:
    path = split_file(directory, split, _FORMATS)
    text = read_text(path)
    try:
        if path.suffix == ".csv":
            reader = csv.DictReader(text.splitlines())
            records = [dict(row) for row in reader]
            return _Split(records, list(reader.fieldnames or []))
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            loaded = json.loads(text)
            records = loaded["data"] if isinstance(loaded, dict) else loaded
    except (json.JSONDecodeError, KeyError, TypeError, csv.Error) as error:
        raise DataError(f"cannot parse {path}: {error}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected one JSON object per example")
    columns = list(dict.fromkeys(key for record in records for key in record))
    return _Split(records, columns)


def _hub(dataset: str, split: str, config: str | None) -> _Split:
    loaded = load_hub(dataset, split, config)
    import datasets  # present: load_hub needed it

    names = {
        column: list(feature.names)
        for column, feature in loaded.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }
    return _Split(list(loaded), list(loaded.column_names), names)


def _text_columns(available: list[str], columns: Columns, where: str) -> tuple[str, str | None]:
    text = columns.text or next((c for c in TEXT_COLUMNS if c in available), None)
    if text is None:
        raise DataError(
            f"{where}: no text column; set text_column (columns: {', '.join(available)}; "
            f"looked for {', '.join(TEXT_COLUMNS)})"
        )
    pair = columns.text_pair
    if pair is None and TEXT_PAIR_COLUMN in available and text != TEXT_PAIR_COLUMN:
        pair = TEXT_PAIR_COLUMN
    return text, pair


def _require_columns(available: list[str], wanted: Sequence[str | None], where: str) -> None:
    missing = [c for c in wanted if c is not None and c not in available]
    if missing:
        raise DataError(
            f"{where}: no column {', '.join(map(repr, missing))} (columns: {', '.join(available)})"
        )


def _text(record: dict[str, Any], column: str, where: str) -> str:
    value = record.get(column)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: an example has no text in column {column!r}: {record}")
    return value


def _as_id(value: Any) -> int | str:
    """An integer id, or a name; CSV files hold ids as digit strings."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _label_names(values: list[Any], where: str) -> list[str]:
    labels = [_as_id(v) for v in values]
    names = {label for label in labels if isinstance(label, str)}
    ids = {label for label in labels if isinstance(label, int)}
    if names and ids:
        raise DataError(f"{where}: labels mix integer ids and names")
    if ids and min(ids) < 0:
        raise DataError(
            f"{where}: negative label {min(ids)} (an unlabelled test split?); use a labelled split"
        )
    return sorted(names) if names else [str(i) for i in range(max(ids) + 1)]


def _label_ids(values: list[Any], ids: dict[str, int], where: str) -> list[int]:
    """Ids of the labels; a name must be one of ``ids``, an id is kept as it is."""
    found = []
    for value in values:
        label = _as_id(value)
        if isinstance(label, int):
            if label < 0:
                raise DataError(f"{where}: negative label {label} (an unlabelled test split?)")
            found.append(label)
        elif label in ids:
            found.append(ids[label])
        else:
            known = ", ".join(ids)
            raise DataError(f"{where}: label {label!r} never occurs in training (labels: {known})")
    return found
