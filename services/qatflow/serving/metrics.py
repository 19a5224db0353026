"""Prometheus metrics of one service process, labelled by model and backend."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from qatflow.serving.batching import BatchObserver

# Buckets from 5 ms (a short question on a small model) to 10 s (a very long context).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WINDOW_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 64, 128, 256)
# From no wait at all (a lone request) to a runtime many inferences behind.
_QUEUE_BUCKETS = (0.0001, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """One registry per app, so tests and reloads never collide on global names."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        labels = ["model", "backend"]
        self.request_seconds = Histogram(
            "qatflow_request_duration_seconds",
            "Latency of answered inference requests, body read to reply.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "qatflow_inference_duration_seconds",
            "Time in tokenization, the batch queue, model inference and post-processing.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "qatflow_requests",
            "Inference requests (either task) by HTTP status code.",
            [*labels, "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "qatflow_request_errors",
            "Inference requests answered with an error, by kind.",
            [*labels, "code", "kind"],
            registry=self.registry,
        )
        self.questions = Counter(
            "qatflow_questions",
            "Questions answered (a batch request counts each of its inputs).",
            labels,
            registry=self.registry,
        )
        self.texts = Counter(
            "qatflow_texts",
            "Texts classified (a batch request counts each of its inputs).",
            labels,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "qatflow_inferences_in_flight",
            "Requests being served now: tokenizing, queued or inferring (at most max_concurrency).",
            labels,
            registry=self.registry,
        )
        self.batch_windows = Histogram(
            "qatflow_batch_windows",
            "Windows per inference: one request's, or several requests' grouped by the batcher.",
            labels,
            buckets=_WINDOW_BUCKETS,
            registry=self.registry,
        )
        self.batch_queue_seconds = Histogram(
            "qatflow_batch_queue_seconds",
            "Time a request's windows waited in the batcher for their inference to start.",
            labels,
            buckets=_QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "qatflow_model_version",
            "Version of the model being served, with the precision its non-INT8 ops run at.",
            [*labels, "inference_precision"],
            registry=self.registry,
        )
        self.model_loads = Counter(
            "qatflow_model_loads",
            "Attempts to load a published version, by result (loaded, refused, failed).",
            [*labels, "result"],
            registry=self.registry,
        )

    def batch_observer(self, model: str, backend: str) -> BatchObserver:
        """What a backend calls with each inference's windows and its requests' queue waits."""
        windows = self.batch_windows.labels(model, backend)
        waited = self.batch_queue_seconds.labels(model, backend)

        def observe(count: int, waits: Sequence[float]) -> None:
            windows.observe(count)
            for wait in waits:
                waited.observe(wait)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)
