"""``qatflow ask`` over gRPC against each KServe v2 server (the OVMS stand-in, over KServe v2 and
TF-Serving, and MLServer), and the edges a third-party server brings: another served name, no
tensor metadata, another version, batch limits, typed contents, a port that is not gRPC."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from qatflow.client.errors import ServerUnavailableError
from qatflow.client.grpc_qa import GrpcQuestionAnswering
from qatflow.client.kserve import output_array
from qatflow.client.protocol import connect
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core import qa
from qatflow.local import free_port
from qatflow.training import synthetic_qa
from tests.conftest import compile_ir

from .ask_command import run_ask
from .conftest import (
    BARE,
    BATCH_2,
    INT32,
    LIMIT_2,
    MLSERVER,
    RENAMED,
    STAND_IN,
    TYPED,
    UNVERSIONED,
    per_target,
    start_server,
)


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    """Held-out questions, several with contexts longer than one window."""
    examples = synthetic_qa.generate("validation", 40, 0)
    long = [example for example in examples if len(example.context) > 1000][:3]
    short = [example for example in examples if len(example.context) <= 1000][:5]
    assert len(long) == 3
    return [(example.question, example.context) for example in long + short]


@pytest.fixture(scope="module")
def expected(published_model, pairs) -> list[qa.Answer]:
    return direct_answers(published_model, pairs)


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


def questions_file(tmp_path, pairs) -> str:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"question": q, "context": c}) + "\n" for q, c in pairs))
    return str(path)


ONE_QUESTION = ("--question", "q?", "--context", "c.")


def ask_grpc(address: str, version, *args: str):  # type: ignore[no-untyped-def]
    """``qatflow ask`` at ``address`` with the tokenizer of ``version``'s folder."""
    return run_ask("--grpc", address, "--models-dir", str(version.path.parent.parent), *args)


def ask_json(server, version, *args: str):  # type: ignore[no-untyped-def]
    """``qatflow ask --json`` against ``server``, as ``ask_grpc``."""
    return ask_grpc(server.address, version, "--json", *args)


def answers_of(result) -> list[dict]:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@per_target
def test_library_answers_equal_openvino_in_process(protocol, qa_server, published_model, pairs):
    expected = direct_answers(published_model, pairs, top_k=2)
    client = GrpcQuestionAnswering(
        connect(protocol, qa_server.address, timeout=10), published_model.name, published_model
    )
    try:
        client.check()
        got = [a for q, c in pairs for a in client.ask(q, c, top_k=2)]
    finally:
        client.close()
    assert_same_answers([a.as_dict() for a in got], expected)
    for answer, (_, context) in zip(got[::2], pairs, strict=True):
        assert context[answer.start : answer.end] == answer.answer


@per_target
def test_cli_json_answers_equal_openvino_in_process(
    protocol, qa_server, published_model, pairs, expected, tmp_path
):
    result = ask_json(
        qa_server,
        published_model,
        "--protocol",
        protocol,
        "--model",
        published_model.name,
        "--input",
        questions_file(tmp_path, pairs),
    )
    got = answers_of(result)
    assert all(set(item) == {"answer", "score", "start", "end"} for item in got)
    assert_same_answers(got, expected)
    assert result.stderr == ""


def test_cli_prints_a_table_for_a_csv_file(qa_server, published_model, pairs, tmp_path):
    import csv

    questions = tmp_path / "input.csv"
    with questions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "context"])
        writer.writerows(pairs[:3])
    result = ask_grpc(
        qa_server.address,
        published_model,
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


@per_target
def test_benchmark_prints_percentiles_and_throughput(protocol, qa_server, published_model):
    result = ask_json(
        qa_server,
        published_model,
        "--protocol",
        protocol,
        "--question",
        "Who is the employer of Ulla Fromberg?",
        "--context",
        "Ulla Fromberg works for Velmora Shipping. Felix Abendroth works for Castell Glass.",
        "--iterations",
        "20",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["requests"] == 20
    assert 0 < summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"]
    assert summary["throughput_rps"] > 0


def test_served_name_asks_a_model_served_under_another_name(
    qa_server, published_model, pairs, expected, tmp_path
):
    result = ask_json(
        qa_server,
        published_model,
        "--model",
        published_model.name,
        "--served-name",
        RENAMED,
        "--input",
        questions_file(tmp_path, pairs),
    )
    assert_same_answers(answers_of(result), expected)


def test_unknown_model_exits_with_a_clear_error(qa_server, published_model, tmp_path):
    # A local copy under another name: the tokenizer exists, the server does not know the model.
    other = tmp_path / "models"
    (other / "renamed").mkdir(parents=True)
    (other / "renamed" / "1").symlink_to(published_model.path, target_is_directory=True)
    result = run_ask(
        "--grpc",
        qa_server.address,
        "--models-dir",
        str(other),
        "--model",
        "renamed",
        *ONE_QUESTION,
    )
    assert result.returncode == 5
    assert "ModelNotFoundError" in result.stderr and "'renamed'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@per_target
def test_metadata_without_inputs_sends_the_published_inputs_and_says_so_once(
    protocol, qa_server, published_model, pairs, expected, tmp_path
):
    questions = questions_file(tmp_path, pairs)
    result = ask_json(
        qa_server,
        published_model,
        "--protocol",
        protocol,
        "--served-name",
        BARE,
        "--input",
        questions,
    )
    assert_same_answers(answers_of(result), expected)
    [note] = result.stderr.splitlines()
    assert "lists no inputs" in note and "input_ids" in note


@per_target
def test_version_the_server_does_not_serve_exits_9(
    protocol, qa_server, published_model, pairs, expected, tmp_path
):
    """The local folder's newest version is 2 (the same files as 1); the server serves only 1."""
    served = published_model.version
    local = tmp_path / "models" / published_model.name
    local.mkdir(parents=True)
    for number in (served, served + 1):
        (local / str(number)).symlink_to(published_model.path, target_is_directory=True)
    common = [
        "--grpc",
        qa_server.address,
        "--protocol",
        protocol,
        "--models-dir",
        str(local.parent),
    ]
    result = run_ask(*common, *ONE_QUESTION)
    assert result.returncode == 9, result.stderr
    assert "VersionNotServedError" in result.stderr
    assert f"not its version {served + 1}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = run_ask(
        *common,
        "--model-version",
        str(served),
        "--json",
        "--input",
        questions_file(tmp_path, pairs),
    )
    assert_same_answers(answers_of(result), expected)


@pytest.mark.parametrize("server_kind", [MLSERVER])
def test_mlserver_model_without_a_declared_version_exits_9(qa_server, published_model):
    """Without ``parameters.version`` MLServer serves the model unversioned, and no version is
    served: the client refuses rather than guess that it is the published one."""
    result = ask_json(qa_server, published_model, "--served-name", UNVERSIONED, *ONE_QUESTION)
    assert result.returncode == 9, result.stderr
    assert f"'{UNVERSIONED}' but not its version {published_model.version}" in result.stderr


def test_model_version_missing_locally_is_a_usage_error(published_model):
    result = ask_grpc(
        "127.0.0.1:9",
        published_model,
        "--model-version",
        str(published_model.version + 6),
        *ONE_QUESTION,
    )
    assert result.returncode == 2
    assert f"no version {published_model.version + 6}" in result.stderr


def library_answers(
    protocol, server, served, version, pairs
) -> tuple[list[dict], GrpcQuestionAnswering]:
    """The library's answers from ``served`` on ``server``, and the (closed) client."""
    client = GrpcQuestionAnswering(connect(protocol, server.address, timeout=10), served, version)
    try:
        client.check()
        return [a.as_dict() for q, c in pairs for a in client.ask(q, c)], client
    finally:
        client.close()


def client_notes(caplog) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.getMessage() for r in caplog.records if r.name.startswith("qatflow.client")]


@per_target
def test_stated_batch_size_gets_requests_of_that_size(
    protocol, qa_server, published_model, pairs, expected, caplog
):
    """The server takes exactly 2 windows per request: long contexts go in pairs of windows,
    the last one filled up, and a one-window context is filled up too."""
    got, client = library_answers(protocol, qa_server, BATCH_2, published_model, pairs)
    assert client.batch_size == 2
    assert_same_answers(got, expected)
    assert not client_notes(caplog)


@per_target
def test_batch_refused_as_too_large_is_sent_in_smaller_requests(
    protocol, qa_server, published_model, pairs, expected, caplog
):
    """The server refuses more than 2 windows without saying so beforehand; the first context
    has more than 2 windows."""
    got, client = library_answers(protocol, qa_server, LIMIT_2, published_model, pairs)
    assert client.batch_size == 2
    assert_same_answers(got, expected)
    notes = client_notes(caplog)
    assert notes and all("refused the batch" in note and "at most" in note for note in notes)


@pytest.mark.parametrize("server_kind", [STAND_IN])
def test_answers_in_typed_contents_are_decoded(
    qa_server, published_model, pairs, expected, tmp_path
):
    result = ask_json(
        qa_server,
        published_model,
        "--served-name",
        TYPED,
        "--input",
        questions_file(tmp_path, pairs),
    )
    assert_same_answers(answers_of(result), expected)


@pytest.mark.parametrize("server_kind", [MLSERVER])
def test_mlservers_typed_answer_to_a_typed_request_is_decoded(qa_server, published_model):
    """MLServer answers in typed contents (``fp32_contents``) when the request is typed."""
    ids = [2, 10, 11, 3, 12, 13, 3]
    inputs = {"input_ids": ids, "attention_mask": [1] * 7, "token_type_ids": [0, 0, 0, 0, 1, 1, 1]}
    request = service_pb2.ModelInferRequest(model_name=published_model.name)
    for name, values in inputs.items():
        tensor = request.inputs.add(name=name, datatype="INT64", shape=[1, len(values)])
        tensor.contents.int64_contents.extend(values)
    with grpc.insecure_channel(qa_server.address) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, timeout=10
        )
    assert not response.raw_output_contents
    expected = compile_ir(published_model)(
        {name: np.array([values], dtype=np.int64) for name, values in inputs.items()}
    )
    for name in ("start_logits", "end_logits"):
        got = output_array(response, name)
        assert got is not None and got.shape == (1, 7)
        np.testing.assert_allclose(got, expected[name], rtol=1e-5, atol=1e-5)


def test_http_port_given_as_grpc_is_not_a_grpc_server(qa_server, published_model):
    result = ask_grpc(
        qa_server.rest_address,
        published_model,
        *ONE_QUESTION,
    )
    assert result.returncode == 10, result.stderr
    assert "NotGrpcServerError" in result.stderr and "not as a gRPC server" in result.stderr
    assert "gave up" not in result.stderr  # not retried: it will not turn into a gRPC server
    assert len(result.stderr.strip().splitlines()) == 1


@per_target
def test_stopped_server_gives_bounded_retries_then_exit_4(server_kind, protocol, published_model):
    server = start_server(server_kind, published_model.path.parent.parent)
    address = server.address
    server.stop()
    result = run_ask(
        "--grpc",
        address,
        "--protocol",
        protocol,
        "--models-dir",
        str(published_model.path.parent.parent),
        *ONE_QUESTION,
        "--retries",
        "2",
    )
    assert result.returncode == 4
    assert "gave up after 3 attempts" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_retries_reach_a_server_that_comes_up(server_kind, published_model):
    """A client started before the server (a restarting pod) gets through once it listens."""
    port = free_port()
    client = connect("kserve", f"127.0.0.1:{port}", timeout=5)
    server = None
    try:
        with pytest.raises(ServerUnavailableError):
            client.model_ready(published_model.name)
        server = start_server(server_kind, published_model.path.parent.parent, port=port)
        ready = with_retries(
            lambda: client.model_ready(published_model.name),
            RetryPolicy(attempts=10, backoff=0.2, max_backoff=2.0),
            "model ready",
        )
        assert ready
    finally:
        client.close()
        if server is not None:
            server.stop()


@per_target
def test_model_with_other_input_dtypes_exits_6_before_inference(
    protocol, qa_server, published_model
):
    result = run_ask(
        "--grpc",
        qa_server.address,
        "--protocol",
        protocol,
        "--models-dir",
        str(published_model.path.parent.parent),
        "--served-name",
        INT32,
        *ONE_QUESTION,
    )
    assert result.returncode == 6
    assert "InputMismatchError" in result.stderr and "int32" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_grpc_flags_with_url_are_a_usage_error():
    result = run_ask("--url", "http://127.0.0.1:9", "--served-name", "qa", *ONE_QUESTION)
    assert result.returncode == 2
    assert "--grpc only" in result.stderr


def test_grpc_without_models_dir_is_a_usage_error():
    result = run_ask("--grpc", "127.0.0.1:9", *ONE_QUESTION)
    assert result.returncode == 2
    assert "--models-dir" in result.stderr


def test_grpc_address_with_a_scheme_is_a_usage_error(published_model):
    result = ask_grpc(
        "http://127.0.0.1:9000",
        published_model,
        *ONE_QUESTION,
    )
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr
