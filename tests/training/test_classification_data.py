"""Classification data: embedded sets, local JSONL / JSON / CSV, columns, labels, clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qatflow.training.classification_data import Columns, load_classification_data
from qatflow.training.data_sources import EMBEDDED_SIZES, DataError
from qatflow.training.examples import ClassificationExample
from qatflow.training.synthetic_classification import generate_paraphrase, generate_sentiment


def _load(dataset: str | Path, **options):
    return load_classification_data(
        str(dataset), train_split="train", eval_split="validation", **options
    )


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _write_csv(path: Path, records: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


@pytest.mark.parametrize("generate", [generate_sentiment, generate_paraphrase])
def test_generated_sets_are_deterministic_balanced_and_hold_out_vocabulary(generate):
    train = generate("train", 1000, 7)
    assert train == generate("train", 1000, 7)
    assert train != generate("train", 1000, 8)
    assert 400 < sum(e.label for e in train) < 600
    validation = generate("validation", 1000, 7)
    words = {w for e in train for w in f"{e.text} {e.text_pair or ''}".lower().split()}
    unseen = [e for e in validation if set(f"{e.text} {e.text_pair or ''}".lower().split()) - words]
    # Every validation example names a new product / company / person.
    assert len(unseen) == len(validation)
    assert all((e.text_pair is None) == (generate is generate_sentiment) for e in train)


def test_embedded_sets_have_their_labels_and_sizes():
    sentiment = _load("embedded:synthetic-sentiment", max_train=50, max_eval=None)
    assert sentiment.labels == ["negative", "positive"]
    assert (len(sentiment.train), len(sentiment.eval)) == (50, 1000)
    assert not sentiment.text_pair
    paraphrase = _load("embedded:synthetic-paraphrase", max_train=None, max_eval=20)
    assert paraphrase.labels == ["not_equivalent", "equivalent"]
    assert (len(paraphrase.train), len(paraphrase.eval)) == (EMBEDDED_SIZES["train"], 20)
    assert paraphrase.text_pair and all(e.text_pair for e in paraphrase.train)


def test_jsonl_with_label_names_gets_sorted_ids(tmp_path):
    records = [
        {"text": "great phone", "label": "positive"},
        {"text": "awful phone", "label": "negative"},
        {"text": "it is fine", "label": "neutral"},
    ]
    _write_jsonl(tmp_path / "train.jsonl", records)
    _write_jsonl(tmp_path / "validation.jsonl", records[:2])
    data = _load(tmp_path)
    assert data.labels == ["negative", "neutral", "positive"]
    assert data.train == [
        ClassificationExample("great phone", None, 2),
        ClassificationExample("awful phone", None, 0),
        ClassificationExample("it is fine", None, 1),
    ]
    assert not data.text_pair


def test_csv_sentence_pairs_with_integer_labels_are_detected(tmp_path):
    records = [
        {"sentence1": "a b", "sentence2": "b a", "label": "1", "idx": "0"},
        {"sentence1": "c d", "sentence2": "e f", "label": "0", "idx": "1"},
    ]
    _write_csv(tmp_path / "train.csv", records)
    _write_csv(tmp_path / "validation.csv", records[::-1])
    data = _load(tmp_path)
    assert data.text_pair
    assert data.labels == ["0", "1"]
    assert data.eval == [
        ClassificationExample("c d", "e f", 0),
        ClassificationExample("a b", "b a", 1),
    ]


def test_json_list_and_explicit_columns(tmp_path):
    records = [
        {"review": "good", "title": "x", "stars": 1},
        {"review": "bad", "title": "y", "stars": 0},
    ]
    (tmp_path / "train.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "validation.json").write_text(json.dumps({"data": records}), encoding="utf-8")
    data = _load(tmp_path, columns=Columns(text="review", text_pair="title", label="stars"))
    assert data.train[0] == ClassificationExample("good", "x", 1)
    assert data.labels == ["0", "1"]


@pytest.mark.parametrize(
    ("train", "validation", "columns", "message"),
    [
        ([{"body": "x", "label": 0}], [{"body": "x", "label": 0}], Columns(), "no text column"),
        ([{"text": "x", "y": 0}], [{"text": "x", "y": 0}], Columns(), "no column 'label'"),
        (
            [{"text": "x", "label": 0}],
            [{"text": "x", "label": 0}],
            Columns(text_pair="other"),
            "no column 'other'",
        ),
        (
            [{"text": "x", "label": "a"}],
            [{"text": "x", "label": "b"}],
            Columns(),
            "'b' never occurs",
        ),
        (
            [{"text": "x", "label": 0}],
            [{"text": "x", "label": 3}],
            Columns(),
            "never occur in split",
        ),
        ([{"text": "x", "label": -1}], [{"text": "x", "label": 0}], Columns(), "negative label"),
        (
            [{"text": "x", "label": 0}, {"text": "y", "label": "b"}],
            [{"text": "x", "label": 0}],
            Columns(),
            "mix integer ids and names",
        ),
        ([{"text": "", "label": 0}], [{"text": "x", "label": 0}], Columns(), "has no text"),
        ([], [{"text": "x", "label": 0}], Columns(), "holds no examples"),
    ],
)
def test_bad_columns_and_labels_are_clear_errors(tmp_path, train, validation, columns, message):
    _write_jsonl(tmp_path / "train.jsonl", train)
    _write_jsonl(tmp_path / "validation.jsonl", validation)
    with pytest.raises(DataError, match=message):
        _load(tmp_path, columns=columns)


def test_unreadable_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"no train\.jsonl / train\.json / train\.csv"):
        _load(tmp_path)
    (tmp_path / "train.jsonl").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(DataError, match="cannot read"):
        _load(tmp_path)
    (tmp_path / "train.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="cannot parse"):
        _load(tmp_path)
    with pytest.raises(DataError, match="is a file"):
        _load(tmp_path / "train.jsonl")


def test_unknown_embedded_set_split_and_unreachable_hub_are_clear_errors():
    with pytest.raises(DataError, match="available: embedded:synthetic-sentiment"):
        _load("embedded:synthetic-qa")
    with pytest.raises(DataError, match="has splits"):
        load_classification_data(
            "embedded:synthetic-sentiment", train_split="train", eval_split="test"
        )
    # HF_HUB_OFFLINE is set for the test session: the hub path fails without a network.
    with pytest.raises(DataError, match="cannot load 'glue' split 'train' from the hub"):
        _load("glue", config="sst2")
