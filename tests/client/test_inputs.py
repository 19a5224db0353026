"""Reading questions from files, and the benchmark's statistics."""

from __future__ import annotations

import pytest

from qatflow.client.bench import summarize
from qatflow.client.errors import BadInputError
from qatflow.client.inputs import QuestionPair, read_pairs
from qatflow.client.retry import RetryPolicy

from .ask_command import run_ask


def test_csv_with_header_in_any_order_and_quoted_commas(tmp_path):
    path = tmp_path / "input.csv"
    path.write_text('context,Question\n"Alice lives in Paris, France.",Where?\n')
    assert read_pairs(path) == [QuestionPair("Where?", "Alice lives in Paris, France.")]


def test_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_text(
        '{"question": "Q1?", "context": "C1."}\n\n{"question": "Q2?", "context": "C2."}\n'
    )
    assert [pair.question for pair in read_pairs(path)] == ["Q1?", "Q2?"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "not found"),
        ("input.txt", "question,context\nq,c\n", "use a .csv or .jsonl"),
        ("input.csv", "q,c\nWho?,Alice.\n", "header must name the columns"),
        ("input.csv", "question,context\n", "holds no question"),
        ("input.csv", "question,context\n,Alice.\n", "input.csv:2: empty or missing question"),
        ("input.jsonl", '{"question": "Q?", "context": "C."}\n{oops\n', "input.jsonl:2: not valid"),
        ("input.jsonl", '["Q?", "C."]\n', "input.jsonl:1: expected an object"),
        ("input.jsonl", '{"question": "Q?"}\n', "input.jsonl:1: empty or missing context"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError, match=message):
        read_pairs(path)


def test_bad_input_file_exits_3_before_contacting_any_server(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_text("{oops\n")
    result = run_ask("--url", "http://127.0.0.1:9", "--input", str(path))
    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"qatflow ask: BadInputError: {path}:1: not valid JSON (Expecting property name "
        "enclosed in double quotes)"
    )


def test_percentiles_and_throughput():
    summary = summarize([n / 1000 for n in range(1, 101)], wall_seconds=2.0)
    assert summary.requests == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p90_ms == pytest.approx(90.1)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.throughput_rps == pytest.approx(50.0)


def test_backoff_doubles_up_to_its_cap():
    assert RetryPolicy(attempts=5, backoff=0.5, max_backoff=1.5).delays() == [0.5, 1.0, 1.5, 1.5]
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
