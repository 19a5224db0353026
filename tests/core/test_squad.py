import pytest

from qatflow.core.squad import exact_match, f1, normalize_answer, squad_scores


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a   cat,  an apple ", "cat apple"),
        ("Denver Broncos", "denver broncos"),
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_ignores_case_articles_and_punctuation():
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0


def test_f1_on_partial_overlap():
    # prediction "denver broncos team" vs truth "denver broncos": precision 2/3, recall 1
    assert f1("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert f1("Carolina", "Denver Broncos") == 0.0
    assert f1("", "") == 1.0
    assert f1("", "Denver") == 0.0


def test_squad_scores_takes_the_best_reference():
    scores = squad_scores(
        ["Denver Broncos", "Santa Clara", "1990"],
        [["Denver Broncos", "Broncos"], ["Santa Clara, California"], ["1989"]],
    )
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    assert scores["samples"] == 3


def test_squad_scores_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        squad_scores(["a"], [])
