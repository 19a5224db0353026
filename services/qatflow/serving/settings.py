"""HTTP service settings. Environment: ``QATFLOW_SERVE_<KEY>``; ``qatflow serve`` flags override."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from qatflow.core.backends import DEFAULT_SERVING_BACKEND, ServingBackend
from qatflow.core.precision import InferencePrecision
from qatflow.core.settings import Settings


class ServeSettings(Settings):
    """Everything an inference service reads."""

    env_prefix: ClassVar[str] = "QATFLOW_SERVE_"

    backend: ServingBackend = DEFAULT_SERVING_BACKEND
    """Runtime: Optimum-Intel (OpenVINO IR) or ONNX Runtime with the OpenVINO EP (INT8 ONNX)."""

    models_dir: Path = Path("models")
    """The shared models directory the training job publishes to (mounted read-only)."""

    model_name: str | None = None
    """Model to serve; None serves the only model under models_dir."""

    model_version: int | None = Field(default=None, ge=1)
    """Version to serve; None serves the newest complete version and follows new ones."""

    host: str = "0.0.0.0"
    """Interface to listen on."""

    port: int = Field(default=8080, ge=1, le=65535)
    """HTTP port."""

    poll_interval: float = Field(default=5.0, gt=0)
    """Seconds between looks for a (newer) published version."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted; larger ones get 413."""

    max_batch_size: int = Field(default=32, ge=1)
    """Most inputs in one batch request; more get 422."""

    max_concurrency: int = Field(default=4, ge=1)
    """Requests served at once; requests beyond this get 503 instead of queueing."""

    batching: bool = True
    """Adaptive batching: the windows of concurrent requests share one inference (false: each
    request's windows run on their own)."""

    batch_max_windows: int = Field(default=16, ge=1, le=256)
    """Most windows in one inference, from one request or grouped from several (a long context
    makes several windows; not the same as max_batch_size, the inputs of one batch request)."""

    batch_max_delay_ms: float = Field(default=0.0, ge=0, le=10_000)
    """Longest the first request of a batch waits for others to join it; 0 groups only the
    requests that queued while the runtime was busy, so a lone request never waits."""

    max_answer_length: int = Field(default=30, ge=1)
    """Default longest answer span in tokens (a request may ask for less or more)."""

    threads: int | None = Field(default=None, ge=1)
    """Inference threads (None: the runtime's default, every core)."""

    performance_hint: Literal["LATENCY", "THROUGHPUT"] = "LATENCY"
    """OpenVINO performance hint."""

    inference_precision: InferencePrecision = "auto"
    """Precision of the ops that are not INT8, the same in both backends: auto keeps the CPU's
    fastest (bf16 where it computes bf16, else f32); f32 gives the same scores on every CPU."""

    ort_provider_options: dict[str, Any] = Field(default_factory=dict)
    """Extra OpenVINO Execution Provider options for the onnxruntime backend (JSON object)."""

    shutdown_timeout: float = Field(default=20.0, ge=0)
    """Seconds SIGTERM waits for in-flight requests before the process exits."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the service and uvicorn."""

    log_format: Literal["text", "json"] = "text"
    """``text`` reads well in ``kubectl logs``; ``json`` suits log collectors."""
