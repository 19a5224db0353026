"""Malformed and generated input against both live services: never a 5xx, never a changed answer.

Schemathesis reads each service's own ``/openapi.json`` and generates valid (positive) and
schema-violating (negative) requests for every documented operation; hand-written cases cover
what a generator rarely reaches (bytes that are not UTF-8, bodies at the size limit, deep
nesting, duplicate keys, non-finite numbers).
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from qatflow.training import synthetic_qa
from tests.serving.conftest import ServiceProcess

from .conftest import BACKENDS

pytestmark = pytest.mark.slow

QA_PATH = "/v1/question-answering"
# Generated requests per operation and mode; question answering, the one that runs the model,
# gets most. About 1,100 requests per service, ~20 s each on two cores.
EXAMPLES = {QA_PATH: 400}
OTHER_EXAMPLES = 100
MIN_REQUESTS = 1000


def known_good(service: ServiceProcess) -> dict:
    example = synthetic_qa.generate("validation", 1, 11)[0]
    reply = service.ask({"question": example.question, "context": example.context, "top_k": 3})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    for answer in body["answers"]:
        assert example.context[answer["start"] : answer["end"]] == answer["answer"]
    return body


def fuzz_operations(service: ServiceProcess) -> Counter[tuple[str, str, int]]:
    """Every documented operation, positive and negative, through schemathesis' own checks."""
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    codes: Counter[tuple[str, str, int]] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(service, operation, mode, codes)
            except Unsatisfiable:
                # No invalid value exists for an operation without inputs (the health checks).
                assert mode is GenerationMode.NEGATIVE
    return codes


def fuzz(
    service: ServiceProcess,
    operation: APIOperation,
    mode: GenerationMode,
    codes: Counter[tuple[str, str, int]],
) -> None:
    @settings(
        max_examples=EXAMPLES.get(operation.path, OTHER_EXAMPLES),
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure reproduces
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=service.url)
        codes[(operation.label, mode.value, response.status_code)] += 1
        case.validate_response(
            response,
            checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
        )
        if response.status_code >= 400:
            assert set(response.json()) == {"error"}, response.text

    send()


@pytest.mark.parametrize("backend", BACKENDS)
def test_generated_requests_never_get_a_5xx(
    hardened_services: dict[str, ServiceProcess], backend: str
) -> None:
    service = hardened_services[backend]
    before = known_good(service)
    codes = fuzz_operations(service)
    total = sum(codes.values())
    by_status = Counter()
    for (_, _, status), count in codes.items():
        by_status[status] += count
    summary = {
        "backend": backend,
        "requests": total,
        "status": dict(sorted(by_status.items())),
        "by_operation": {f"{op} [{mode}] {status}": n for (op, mode, status), n in codes.items()},
    }
    print(json.dumps(summary, indent=1), file=sys.stderr)
    assert total >= MIN_REQUESTS
    assert not [status for status in by_status if status >= 500]
    assert by_status[200] > 0 and by_status[422] > 0  # both valid and invalid input got through
    assert known_good(service) == before
    assert service.client.get("/v2/health/ready").status_code == 200


def _nested(depth: int) -> bytes:
    return b'{"question": ' + b"[" * depth + b"]" * depth + b', "context": "c"}'


HAND_WRITTEN = [
    # (case, body, content type, accepted statuses, words the error must contain)
    ("invalid UTF-8 in a string", b'{"question": "caf\xc3", "context": "x"}', None, {400}, "UTF-8"),
    ("UTF-16 body", '{"question": "q", "context": "c"}'.encode("utf-16"), None, {400}, "UTF-8"),
    ("lone surrogate escape", b'{"question": "\\ud800", "context": "x"}', None, {200, 422}, ""),
    ("NUL bytes", b'{"question": "\\u0000", "context": "\\u0000\\u0000"}', None, {200, 422}, ""),
    ("deeply nested arrays", _nested(100_000), None, {400, 422}, ""),
    ("deeply nested objects", b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, None, {400, 422}, ""),
    ("NaN", b'{"question": "q", "context": "c", "top_k": NaN}', None, {400, 422}, "top_k"),
    ("Infinity", b'{"question": "q", "context": "c", "top_k": Infinity}', None, {400, 422}, ""),
    (
        "-Infinity",
        b'{"question": "q", "context": "c", "max_answer_len": -Infinity}',
        None,
        {400, 422},
        "",
    ),
    (
        "huge integer",
        b'{"question": "q", "context": "c", "top_k": 1' + b"0" * 4000 + b"}",
        None,
        {400, 422},
        "",
    ),
    ("huge float", b'{"question": "q", "context": "c", "top_k": 1e999}', None, {400, 422}, ""),
    ("float top_k", b'{"question": "q", "context": "c", "top_k": 2.0}', None, {422}, "top_k"),
    ("duplicate keys", b'{"question": "q", "question": "", "context": "c"}', None, {200, 422}, ""),
    ("empty batch", b'{"inputs": []}', None, {422}, "inputs"),
    (
        "batch over the limit",
        json.dumps({"inputs": [{"question": "q", "context": "c"}] * 1000}).encode(),
        None,
        {413, 422},
        "",
    ),
    ("batch of nulls", b'{"inputs": [null, null]}', None, {422}, "inputs.0"),
    ("single and batch mixed", b'{"inputs": [], "question": "q", "context": "c"}', None, {422}, ""),
    ("text/plain content type", b'{"question": "q", "context": "c"}', "text/plain", {200, 415}, ""),
    (
        "form content type",
        b"question=q&context=c",
        "application/x-www-form-urlencoded",
        {400},
        "JSON",
    ),
    ("multipart content type", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", {400}, ""),
    ("unknown content type", b"{}", "application/x-unknown", {422}, "question"),
    ("whitespace only", b" \n\t ", None, {400}, "empty body"),
    ("BOM before JSON", b'\xef\xbb\xbf{"question": "q", "context": "c"}', None, {200, 400}, ""),
    ("trailing garbage", b'{"question": "q", "context": "c"} {}', None, {400}, "JSON"),
    (
        "body just over the limit",
        b'{"question": "q", "context": "' + b"y" * (1 << 20) + b'"}',
        None,
        {413},
        "exceeds the limit",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "statuses", "words"),
    [case[1:] for case in HAND_WRITTEN],
    ids=[case[0] for case in HAND_WRITTEN],
)
def test_hand_written_malformed_input_gets_a_clear_answer(
    hardened_services: dict[str, ServiceProcess],
    body: bytes,
    content_type: str | None,
    statuses: set[int],
    words: str,
) -> None:
    for service in hardened_services.values():
        headers = {"content-type": content_type or "application/json"}
        response = service.client.post(QA_PATH, content=body, headers=headers)
        assert response.status_code in statuses, response.text[:500]
        if response.status_code != 200:
            reply = response.json()
            assert list(reply) == ["error"]
            assert words in reply["error"]
            assert "Traceback" not in reply["error"]


def test_huge_context_inside_the_limit_is_answered(
    hardened_services: dict[str, ServiceProcess],
) -> None:
    """A quarter MiB of context: thousands of windows, answered from inside the context."""
    example = synthetic_qa.generate("validation", 1, 5)[0]
    filler = " ".join(synthetic_qa.FILLER)
    context = (filler + " ") * (250_000 // (len(filler) + 1)) + example.context
    for service in hardened_services.values():
        with httpx.Client(base_url=service.url, timeout=600.0) as client:
            response = client.post(QA_PATH, json={"question": example.question, "context": context})
        assert response.status_code == 200, response.text[:500]
        answer = response.json()
        assert context[answer["start"] : answer["end"]] == answer["answer"]


def test_wrong_methods_and_paths_are_4xx(hardened_services: dict[str, ServiceProcess]) -> None:
    for service in hardened_services.values():
        for method, path in [
            ("PUT", QA_PATH),
            ("DELETE", "/v2/health/ready"),
            ("GET", "/v2/models/" + "x" * 10_000),
            ("GET", "/v2/models/%00"),
            ("GET", "/../../etc/passwd"),
        ]:
            response = service.client.request(method, path)
            assert 400 <= response.status_code < 500, (method, path, response.status_code)
