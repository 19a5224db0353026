"""Latency percentiles and throughput of a run of requests."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput_rps: float

    def as_dict(self) -> dict[str, Any]:
        return {key: round(value, 3) for key, value in asdict(self).items()}

    def describe(self) -> str:
        return (
            f"{self.requests} requests: p50 {self.p50_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, "
            f"p99 {self.p99_ms:.2f} ms, mean {self.mean_ms:.2f} ms, "
            f"throughput {self.throughput_rps:.1f} req/s"
        )


def summarize(latencies: list[float], wall_seconds: float) -> LatencySummary:
    """``latencies`` in seconds, one per request, sent one after the other over ``wall_seconds``."""
    if not latencies:
        raise ValueError("no request was timed")
    ms = np.asarray(latencies, dtype=np.float64) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LatencySummary(
        requests=len(latencies),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(ms.mean()),
        throughput_rps=len(latencies) / wall_seconds if wall_seconds > 0 else float("inf"),
    )
