"""Adaptive batching: the batcher on its own (a numpy function stands in for the model, so every
row's expected output is known exactly), then the real services with batching on and off."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qatflow.core import qa
from qatflow.core.artifacts import ModelVersion
from qatflow.core.backends import SERVING_BACKENDS
from qatflow.serving.batching import Batcher
from qatflow.training import synthetic_qa
from tests.conftest import PINNED_PRECISION, SAME_RUNTIME_ABS

from .conftest import ServiceProcess

PAD = 0
# Long enough that a test never depends on when threads happen to run: a batch closes as soon as
# it is full, which the tests arrange.
PATIENT_MS = 10_000


def model(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A per-token output and a per-row output that depend only on the row's own tokens."""
    ids = arrays["input_ids"]
    if (ids < 0).any():
        raise ValueError("negative token id")
    return {
        "start_logits": ids * 10.0 + arrays["attention_mask"],
        "logits": (ids * arrays["attention_mask"]).sum(axis=1, keepdims=True).astype(np.float64),
    }


def request(rows: int, width: int, seed: int) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(1, 1000, size=(rows, width))
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


class Recorder:
    """The batcher's observer: windows per inference and each request's queue wait."""

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, windows: int, waits: Sequence[float]) -> None:
        with self._lock:
            self.windows.append(windows)
            self.waits.extend(waits)


def batcher(max_windows: int, recorder: Recorder, delay_ms: float = PATIENT_MS) -> Batcher:
    return Batcher(
        model,
        max_windows=max_windows,
        max_delay=delay_ms / 1000,
        runners=1,
        pad_values={"input_ids": PAD},
        sequence_outputs={"start_logits"},
        observe=recorder,
    )


def run_together(batch: Batcher, requests: list[dict[str, np.ndarray]]) -> list:
    """Every request from its own thread at once; each result, or the exception it raised."""

    def call(arrays: dict[str, np.ndarray]) -> object:
        try:
            return batch.run(arrays)
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(call, requests))


def test_concurrent_requests_share_one_inference_and_get_their_own_rows() -> None:
    requests = [request(1, 20, 0), request(2, 24, 1), request(1, 18, 2), request(3, 22, 3)]
    recorder = Recorder()
    results = run_together(batcher(7, recorder), requests)
    assert recorder.windows == [7]  # all seven windows in one inference
    assert len(recorder.waits) == len(requests)
    for arrays, result in zip(requests, results, strict=True):
        expected = model(arrays)
        # Per-token outputs come back at the request's own width, per-row outputs as they were.
        np.testing.assert_array_equal(result["start_logits"], expected["start_logits"])
        np.testing.assert_array_equal(result["logits"], expected["logits"])


def test_lengths_far_apart_are_not_padded_into_one_inference() -> None:
    recorder = Recorder()
    requests = [request(1, 200, 0), request(1, 8, 1), request(1, 190, 2)]
    results = run_together(batcher(3, recorder), requests)
    # The two long ones together; the short one would have been padded to 25 times its size.
    assert sorted(recorder.windows) == [1, 2]
    for arrays, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["start_logits"], model(arrays)["start_logits"])


def test_an_error_fails_only_the_request_that_caused_it() -> None:
    requests = [request(1, 16, seed) for seed in range(4)]
    requests[2]["input_ids"][0, 5] = -1
    recorder = Recorder()
    results = run_together(batcher(4, recorder), requests)
    assert isinstance(results[2], ValueError)
    for index in (0, 1, 3):
        np.testing.assert_array_equal(results[index]["logits"], model(requests[index])["logits"])
    # The shared inference failed, then each request ran alone.
    assert recorder.windows == [4, 1, 1, 1, 1]


def test_a_request_larger_than_a_batch_runs_in_several_inferences() -> None:
    recorder = Recorder()
    arrays = request(40, 12, 0)
    result = batcher(16, recorder, delay_ms=0).run(arrays)
    assert recorder.windows == [16, 16, 8]
    np.testing.assert_array_equal(result["start_logits"], model(arrays)["start_logits"])
    np.testing.assert_array_equal(result["logits"], model(arrays)["logits"])


def test_no_delay_runs_a_lone_request_at_once() -> None:
    recorder = Recorder()
    arrays = request(2, 10, 0)
    result = batcher(16, recorder, delay_ms=0).run(arrays)
    np.testing.assert_array_equal(result["logits"], model(arrays)["logits"])
    assert recorder.windows == [2]


@pytest.mark.parametrize("runners", [1, 2])
def test_many_threads_each_get_their_own_rows_with_at_most_runners_inferences_at_once(
    runners: int,
) -> None:
    running, most, lock = 0, 0, threading.Lock()

    def slow_model(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002)  # long enough for requests to queue behind it
        with lock:
            running -= 1
        return model(arrays)

    recorder = Recorder()
    batch = Batcher(
        slow_model,
        max_windows=8,
        max_delay=0,
        runners=runners,
        pad_values={"input_ids": PAD},
        sequence_outputs={"start_logits"},
        observe=recorder,
    )
    requests = [request(1 + seed % 3, 10 + seed % 7, seed) for seed in range(300)]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(batch.run, requests))
    for arrays, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["start_logits"], model(arrays)["start_logits"])
        np.testing.assert_array_equal(result["logits"], model(arrays)["logits"])
    assert most == runners  # every runner was used, and never more
    assert sum(recorder.windows) == sum(len(arrays["input_ids"]) for arrays in requests)
    assert max(recorder.windows) > 3  # requests that queued shared inferences


# The real services: python -m qatflow.serving under uvicorn, on the tiny published model.


def questions(version: ModelVersion, count: int) -> list[dict[str, str]]:
    """``count`` questions of one window each, of lengths close enough to share an inference."""
    tokenizer = version.tokenizer()
    by_width = []
    for example in synthetic_qa.generate("validation", 60, 5):
        features = qa.encode(
            tokenizer,
            [example.question],
            [example.context],
            max_length=version.manifest["max_seq_length"],
            doc_stride=version.manifest["doc_stride"],
        )
        if len(features) == 1:
            by_width.append((len(features[0].input_ids), example))
    by_width.sort(key=lambda item: item[0])
    for first in range(len(by_width) - count + 1):
        chosen = by_width[first : first + count]
        if chosen[-1][0] <= 1.2 * chosen[0][0]:
            return [{"question": e.question, "context": e.context} for _, e in chosen]
    raise AssertionError("no questions of similar lengths in the generated set")


def histogram(metrics: str, name: str) -> dict[str, float]:
    """``{le: cumulative count}`` of one histogram, plus ``count`` and ``sum``."""
    found = {
        match[0]: float(match[1])
        for match in re.findall(rf'{name}_bucket{{[^}}]*le="([^"]+)"[^}}]*}} (\S+)', metrics)
    }
    for field in ("count", "sum"):
        total = re.search(rf"{name}_{field}{{[^}}]*}} (\S+)", metrics)
        found[field] = float(total[1]) if total else 0.0
    return found


def same_answers(replies: list[dict], expected: list[dict]) -> None:
    for reply, alone in zip(replies, expected, strict=True):
        assert {k: reply[k] for k in ("answer", "start", "end")} == {
            k: alone[k] for k in ("answer", "start", "end")
        }
        assert reply["score"] == pytest.approx(alone["score"], abs=SAME_RUNTIME_ABS)


@pytest.mark.slow
@pytest.mark.parametrize("backend", SERVING_BACKENDS)
def test_service_batches_concurrent_requests_and_answers_each_as_alone(
    backend: str,
    published_model: ModelVersion,
    services: dict[str, ServiceProcess],
    start_service: Callable[..., ServiceProcess],
) -> None:
    bodies = questions(published_model, 6)
    expected = [services[backend].ask(body).json() for body in bodies]
    service = start_service(
        backend,
        Path(published_model.path.parent.parent),
        max_concurrency=len(bodies) + 1,
        batch_max_windows=len(bodies),
        batch_max_delay_ms=PATIENT_MS,  # the batch closes once all six are in
        inference_precision=PINNED_PRECISION,
    )
    service.wait_ready()
    invalid = {"question": "Who?", "context": "Nobody.", "top_k": 0}
    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        replies = list(pool.map(service.ask, [*bodies, invalid]))
    assert [reply.status_code for reply in replies] == [200] * len(bodies) + [422]
    same_answers([reply.json() for reply in replies[:-1]], expected)
    metrics = service.metrics()
    windows = histogram(metrics, "qatflow_batch_windows")
    assert (windows["count"], windows["sum"]) == (1, len(bodies))  # one inference of all six
    assert histogram(metrics, "qatflow_batch_queue_seconds")["count"] == len(bodies)


@pytest.mark.slow
def test_service_with_batching_off_answers_the_same(
    published_model: ModelVersion, services: dict[str, ServiceProcess], start_service
) -> None:
    bodies = questions(published_model, 4)
    service = start_service(
        "optimum",
        Path(published_model.path.parent.parent),
        batching="false",
        inference_precision=PINNED_PRECISION,
    )
    service.wait_ready()
    with ThreadPoolExecutor(len(bodies)) as pool:
        replies = list(pool.map(service.ask, bodies))
    assert [reply.status_code for reply in replies] == [200] * len(bodies)
    expected = [services["optimum"].ask(body).json() for body in bodies]
    same_answers([reply.json() for reply in replies], expected)
    metrics = service.metrics()
    # Each request's windows in their own inference, and nothing queued in a batcher.
    assert histogram(metrics, "qatflow_batch_windows")["count"] >= len(bodies)
    assert histogram(metrics, "qatflow_batch_queue_seconds")["count"] == 0
