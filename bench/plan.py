"""How much to measure: the default run fits 15 minutes on 2 cores; ``--quick`` is a smoke run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Plan:
    warmup: int = 3
    """Untimed calls before each latency series (compilation, caches, thread pools)."""

    iterations: int = 50
    """Timed calls per latency series, at most."""

    budget_s: float = 5.0
    """Seconds one latency series may take; a slow runtime stops early (at least 10 calls)."""

    seq_lengths: tuple[int, ...] = (128, 384)
    """Sequence lengths of the batch-1 latency series (the model's max length is added)."""

    eval_samples: int | None = None
    """Eval examples scored per runtime (None: the training job's whole eval set)."""

    batch_size: int = 8
    """Windows per call of the batched throughput series."""

    batch_iterations: int = 6
    """Timed calls of the batched throughput series."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Concurrent requests: async infer requests alone, then concurrent HTTP clients."""

    requests_per_level: int = 96
    """Requests sent at each concurrency level."""

    serving: bool = True
    """Measure the HTTP services and the gRPC client end to end."""

    bert_base: bool = True
    """Also time a BERT-base-sized model (random weights) in FP32 and INT8."""

    bert_base_seq_lengths: tuple[int, ...] = (128, 384)
    """Sequence lengths of the BERT-base series."""

    service_settings: dict[str, Any] = field(default_factory=dict)
    """Settings of the measured services (and their backends in process) other than their
    defaults, e.g. ``{"batch_max_delay_ms": 2}``."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


QUICK = Plan(
    warmup=1,
    iterations=5,
    budget_s=2.0,
    seq_lengths=(128,),
    eval_samples=20,
    batch_size=4,
    batch_iterations=2,
    concurrency=(1, 4),
    requests_per_level=8,
    bert_base=False,
)


def make_plan(quick: bool, **overrides: Any) -> Plan:
    base = QUICK if quick else Plan()
    return replace(base, **{key: value for key, value in overrides.items() if value is not None})
