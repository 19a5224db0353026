"""``qatflow ask`` over gRPC (KServe v2 and TF-Serving) against the OVMS stand-in."""

from __future__ import annotations

import json

import pytest

from qatflow.client.errors import ServerUnavailableError
from qatflow.client.grpc_qa import GrpcQuestionAnswering
from qatflow.client.protocol import connect
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core import qa
from qatflow.local import free_port
from qatflow.training import synthetic
from tests.conftest import compile_ir
from tests.ovms_fixture_server import FixtureServer, save_int32_model

from .ask_command import run_ask

PROTOCOLS = ["kserve", "tfs"]


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    """Held-out questions, several with contexts longer than one window."""
    examples = synthetic.generate("validation", 40, 0)
    long = [example for example in examples if len(example.context) > 1000][:3]
    short = [example for example in examples if len(example.context) <= 1000][:5]
    assert len(long) == 3
    return [(example.question, example.context) for example in long + short]


def direct_answers(version, pairs, top_k=1) -> list[qa.Answer]:
    """The same IR run in-process by OpenVINO, with the shared tokenization and post-processing."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(version.path)
    manifest = version.manifest
    compiled = compile_ir(version)
    answers = []
    for question, context in pairs:
        features = qa.encode(
            tokenizer,
            [question],
            [context],
            max_length=manifest["max_seq_length"],
            doc_stride=manifest["doc_stride"],
        )
        arrays = qa.pad(features, tokenizer.pad_token_id)
        outputs = compiled({name: arrays[name] for name in manifest["inputs"]})
        answers += qa.best_answers(
            features,
            outputs["start_logits"],
            outputs["end_logits"],
            [context],
            top_k=top_k,
            max_answer_len=manifest.get("max_answer_length", 30),
        )[0]
    return answers


def assert_same_answers(got: list[dict], expected: list[qa.Answer]) -> None:
    assert [(a["answer"], a["start"], a["end"]) for a in got] == [
        (a.answer, a.start, a.end) for a in expected
    ]
    assert [a["score"] for a in got] == pytest.approx([a.score for a in expected], rel=1e-4)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_library_answers_equal_openvino_in_process(
    protocol, fixture_server, published_model, pairs
):
    expected = direct_answers(published_model, pairs, top_k=2)
    client = GrpcQuestionAnswering(
        connect(protocol, fixture_server.address, timeout=10), published_model.name, published_model
    )
    try:
        client.check()
        got = [a for q, c in pairs for a in client.ask(q, c, top_k=2)]
    finally:
        client.close()
    assert_same_answers([a.as_dict() for a in got], expected)
    for answer, (_, context) in zip(got[::2], pairs, strict=True):
        assert context[answer.start : answer.end] == answer.answer


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cli_json_answers_equal_openvino_in_process(
    protocol, fixture_server, published_model, pairs, tmp_path
):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "".join(json.dumps({"question": q, "context": c}) + "\n" for q, c in pairs)
    )
    result = run_ask(
        "--grpc",
        fixture_server.address,
        "--protocol",
        protocol,
        "--model",
        published_model.name,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--input",
        str(questions),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(item) == {"answer", "score", "start", "end"} for item in got)
    assert_same_answers(got, direct_answers(published_model, pairs))


def test_cli_prints_a_table_for_a_csv_file(fixture_server, published_model, pairs, tmp_path):
    import csv

    questions = tmp_path / "input.csv"
    with questions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "context"])
        writer.writerows(pairs[:3])
    result = run_ask(
        "--grpc",
        fixture_server.address,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--input",
        str(questions),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["question", "answer", "score", "span", "ms"]
    assert len(lines) == 4
    expected = direct_answers(published_model, pairs[:3])
    for line, answer in zip(lines[1:], expected, strict=True):
        assert f"{answer.start}-{answer.end}" in line


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_benchmark_prints_percentiles_and_throughput(protocol, fixture_server, published_model):
    result = run_ask(
        "--grpc",
        fixture_server.address,
        "--protocol",
        protocol,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--question",
        "Who is the employer of Ulla Fromberg?",
        "--context",
        "Ulla Fromberg works for Velmora Shipping. Felix Abendroth works for Castell Glass.",
        "--iterations",
        "20",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"] == 20
    assert 0 < summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"]
    assert summary["throughput_rps"] > 0


def test_unknown_model_exits_with_a_clear_error(fixture_server, published_model, tmp_path):
    # A local copy under another name: the tokenizer exists, the server does not know the model.
    other = tmp_path / "models"
    (other / "renamed").mkdir(parents=True)
    (other / "renamed" / "1").symlink_to(published_model.path, target_is_directory=True)
    result = run_ask(
        "--grpc",
        fixture_server.address,
        "--models-dir",
        str(other),
        "--model",
        "renamed",
        "--question",
        "q?",
        "--context",
        "c.",
    )
    assert result.returncode == 5
    assert "ModelNotFoundError" in result.stderr and "'renamed'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stopped_server_gives_bounded_retries_then_exit_4(protocol, published_model):
    server = FixtureServer(published_model.path.parent.parent).start()
    address = server.address
    server.stop()
    result = run_ask(
        "--grpc",
        address,
        "--protocol",
        protocol,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--question",
        "q?",
        "--context",
        "c.",
        "--retries",
        "2",
    )
    assert result.returncode == 4
    assert "gave up after 3 attempts" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_retries_reach_a_server_that_comes_up(published_model):
    """A client started before the server (a restarting pod) gets through once it listens."""
    port = free_port()
    client = connect("kserve", f"127.0.0.1:{port}", timeout=5)
    server = FixtureServer(published_model.path.parent.parent, port=port)
    try:
        with pytest.raises(ServerUnavailableError):
            client.model_ready(published_model.name)
        server.start()
        ready = with_retries(
            lambda: client.model_ready(published_model.name),
            RetryPolicy(attempts=10, backoff=0.2, max_backoff=2.0),
            "model ready",
        )
        assert ready
    finally:
        client.close()
        server.stop()


def test_model_with_other_input_dtypes_exits_6_before_inference(published_model, tmp_path):
    save_int32_model(tmp_path / published_model.name / "1")
    with FixtureServer(tmp_path) as server:
        result = run_ask(
            "--grpc",
            server.address,
            "--models-dir",
            str(published_model.path.parent.parent),
            "--question",
            "q?",
            "--context",
            "c.",
        )
    assert result.returncode == 6
    assert "InputMismatchError" in result.stderr and "int32" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_grpc_without_models_dir_is_a_usage_error():
    result = run_ask("--grpc", "127.0.0.1:9", "--question", "q?", "--context", "c.")
    assert result.returncode == 2
    assert "--models-dir" in result.stderr


def test_grpc_address_with_a_scheme_is_a_usage_error(published_model):
    result = run_ask(
        "--grpc",
        "http://127.0.0.1:9000",
        "--models-dir",
        str(published_model.path.parent.parent),
        "--question",
        "q?",
        "--context",
        "c.",
    )
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr
