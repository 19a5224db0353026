"""Stride windows and span post-processing on a real (tiny) fast tokenizer."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from qatflow.core import qa


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _logits_for_span(feature: qa.Feature, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    start = np.full((1, len(feature.input_ids)), -5.0, dtype=np.float32)
    end = start.copy()
    start[0, first] = 8.0
    end[0, last] = 8.0
    return start, end


def test_long_context_is_split_into_overlapping_windows(tokenizer):
    context = " ".join(["the harbour is foggy ."] * 40) + " vera pfeiffer plays the harp ."
    features = qa.encode(
        tokenizer, ["what does vera play ?"], [context], max_length=64, doc_stride=16
    )
    assert len(features) > 3
    assert all(len(f.input_ids) <= 64 for f in features)
    assert {f.example for f in features} == {0}
    # consecutive windows share context tokens (the stride)
    first, second = features[0], features[1]
    first_spans = [s for s in first.offsets if s]
    second_spans = [s for s in second.offsets if s]
    assert second_spans[0][0] < first_spans[-1][1]
    # question and special tokens carry no offsets
    assert first.offsets[0] is None


def test_answer_in_a_later_window_maps_back_to_characters(tokenizer):
    context = " ".join(["the harbour is foggy ."] * 40) + " vera pfeiffer plays the harp ."
    features = qa.encode(
        tokenizer, ["what does vera play ?"], [context], max_length=64, doc_stride=16
    )
    last = features[-1]
    harp = context.rindex("harp")
    token = next(i for i, s in enumerate(last.offsets) if s and s[0] == harp)
    arrays = qa.pad(features, tokenizer.pad_token_id)
    start = np.full(arrays["input_ids"].shape, -5.0, dtype=np.float32)
    end = start.copy()
    start[-1, token] = 9.0
    end[-1, token] = 9.0
    [[answer]] = qa.best_answers(features, start, end, [context])
    assert (answer.answer, answer.start, answer.end) == ("harp", harp, harp + 4)
    assert context[answer.start : answer.end] == answer.answer
    assert 0.5 < answer.score <= 1.0


def test_spans_never_cover_the_question_or_run_backwards(tokenizer):
    context = "rosa sandberg was born in tarnow ."
    [feature] = qa.encode(
        tokenizer, ["where was rosa born ?"], [context], max_length=64, doc_stride=16
    )

    def token_at(character: int) -> int:  # words may be split into pieces by the tiny vocabulary
        return next(i for i, s in enumerate(feature.offsets) if s and s[0] <= character < s[1])

    # the best raw logits point into the question and at an end before the start
    start, end = _logits_for_span(feature, 1, 2)
    start[0, token_at(context.index("in tarnow"))] = 3.0
    end[0, token_at(context.index("born"))] = 7.0
    end[0, token_at(context.index(" .") - 1)] = 2.0
    [answers] = qa.best_answers([feature], start, end, [context], top_k=3)
    for answer in answers:
        assert answer.start < answer.end
        assert context[answer.start : answer.end] == answer.answer
    assert answers[0].answer == "in tarnow"


def test_max_answer_len_limits_span_length(tokenizer):
    context = "one two three four five six seven eight"
    [feature] = qa.encode(tokenizer, ["which ?"], [context], max_length=64, doc_stride=16)
    tokens = [i for i, s in enumerate(feature.offsets) if s]
    start, end = _logits_for_span(feature, tokens[0], tokens[-1])
    [[answer]] = qa.best_answers([feature], start, end, [context], max_answer_len=3)
    assert len(answer.answer.split()) <= 3


def test_top_k_answers_are_sorted_and_distinct(tokenizer):
    context = "rosa sandberg was born in tarnow and plays the cello ."
    [feature] = qa.encode(tokenizer, ["what ?"], [context], max_length=64, doc_stride=16)
    rng = np.random.default_rng(0)
    start = rng.normal(size=(1, len(feature.input_ids))).astype(np.float32)
    end = rng.normal(size=(1, len(feature.input_ids))).astype(np.float32)
    [answers] = qa.best_answers([feature], start, end, [context], top_k=5)
    assert len(answers) == 5
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    assert len({(a.start, a.end) for a in answers}) == 5


def test_too_long_question_is_refused(tokenizer):
    with pytest.raises(qa.QuestionTooLongError, match="tokens"):
        qa.encode(tokenizer, ["where " * 60], ["tarnow"], max_length=64, doc_stride=16)


def test_several_examples_keep_their_own_windows(tokenizer):
    contexts = ["rosa was born in tarnow .", " ".join(["fog ."] * 60)]
    features = qa.encode(tokenizer, ["where ?", "what ?"], contexts, max_length=48, doc_stride=8)
    assert features[0].example == 0
    assert sum(f.example == 1 for f in features) > 1
    arrays = qa.pad(features, tokenizer.pad_token_id)
    assert arrays["input_ids"].dtype == np.int64
    assert arrays["attention_mask"][0].sum() == len(features[0].input_ids)
