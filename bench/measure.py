"""Timers: latency percentiles after warm-up, batched throughput, and concurrent async requests."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qatflow.client.bench import summarize
from qatflow.core import qa

_MIN_SAMPLES = 10


def latency(
    call: Callable[[], Any], *, warmup: int, iterations: int, budget_s: float | None = None
) -> dict[str, float]:
    """p50/p90/p99/mean of ``iterations`` sequential calls, after ``warmup`` untimed ones.

    ``budget_s`` stops a slow runtime early, once it has at least ``_MIN_SAMPLES`` timings.
    """
    for _ in range(warmup):
        call()
    times: list[float] = []
    started = time.perf_counter()
    for _ in range(iterations):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
        spent = time.perf_counter() - started
        if budget_s is not None and spent > budget_s and len(times) >= _MIN_SAMPLES:
            break
    return summarize(times, time.perf_counter() - started).as_dict()


def throughput(
    call: Callable[[], Any], samples_per_call: int, *, warmup: int, iterations: int
) -> float:
    """Samples per second of sequential calls, each carrying ``samples_per_call`` windows."""
    for _ in range(warmup):
        call()
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    return samples_per_call * iterations / (time.perf_counter() - started)


def openvino_async_throughput(
    path: Path, arrays: dict[str, np.ndarray], concurrency: Sequence[int], requests: int
) -> dict[str, Any]:
    """OpenVINO alone at its best: THROUGHPUT hint, ``n`` infer requests in flight at once."""
    import openvino as ov

    compiled = ov.Core().compile_model(path, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    names = [port.get_any_name() for port in compiled.inputs]
    inputs = {name: arrays[name] for name in names}
    result: dict[str, Any] = {
        "optimal_requests": int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")),
        "streams": int(compiled.get_property("NUM_STREAMS")),
        "samples_per_second": {},
    }
    for jobs in concurrency:
        queue = ov.AsyncInferQueue(compiled, jobs)
        for _ in range(jobs):  # warm every request up
            queue.start_async(inputs)
        queue.wait_all()
        started = time.perf_counter()
        for _ in range(requests):
            queue.start_async(inputs)
        queue.wait_all()
        rate = requests * len(arrays["input_ids"]) / (time.perf_counter() - started)
        result["samples_per_second"][str(jobs)] = round(rate, 2)
    return result


def window(
    tokenizer: Any, text: tuple[str, str], length: int, stride: int
) -> dict[str, np.ndarray]:
    """One padded window of exactly ``length`` tokens (when the text is long enough)."""
    features = qa.encode(
        tokenizer, [text[0]], [text[1]], max_length=length, doc_stride=min(stride, length // 4)
    )
    return qa.pad(features[:1], tokenizer.pad_token_id)


def text_of_tokens(tokenizer: Any, examples: Sequence[Any], tokens: int) -> tuple[str, str]:
    """A real eval question with a context of eval passages cut so the pair takes ``tokens``
    tokens ([CLS] q [SEP] c [SEP]), for timings on realistic text at a chosen length."""
    question = examples[0].question
    room = tokens - len(tokenizer(question, add_special_tokens=False)["input_ids"]) - 3
    if room < 1:
        raise ValueError(f"a window of {tokens} tokens cannot hold the question")
    passages = " ".join(dict.fromkeys(example.context for example in examples))
    context = passages
    while len(tokenizer(context, add_special_tokens=False)["input_ids"]) <= room:
        context = f"{context} {passages}"
    offsets = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
    return question, context[: offsets["offset_mapping"][room - 1][1]]
