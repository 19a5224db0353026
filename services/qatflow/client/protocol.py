"""One interface over the two gRPC APIs OpenVINO Model Server has spoken.

KServe v2 (``tritonclient.grpc``) is what current OVMS serves; TF-Serving (``ovmsclient``) is
what it served up to its removal, kept for servers still running an older image.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qatflow.client import errors

if TYPE_CHECKING:  # numpy stays off the import path of the CLI's argument parsing
    import numpy as np

# Each gRPC API -> the class that speaks it, named rather than imported: the implementations
# import this module, and each imports its own client library (tritonclient, ovmsclient) only
# when chosen. The first is the default.
PROTOCOLS: dict[str, str] = {
    "kserve": "qatflow.client.kserve:KServeProtocol",
    "tfs": "qatflow.client.tfs:TfServingProtocol",
}
DEFAULT_PROTOCOL = next(iter(PROTOCOLS))


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    """numpy dtype name: ``int64``, ``float32`` ..."""

    shape: tuple[int, ...]
    """-1 marks a dynamic dimension."""


@dataclass(frozen=True)
class ModelSignature:
    name: str
    versions: tuple[str, ...]
    """As the server lists them: OVMS the versions it serves; MLServer free text, often none."""

    inputs: tuple[TensorSpec, ...]
    """Empty when the server does not say (MLServer unless its model settings declare them)."""

    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)


class InferenceProtocol(abc.ABC):
    """A connection to a model server; every call raises only ``qatflow.client.errors``."""

    name: str
    address: str

    @abc.abstractmethod
    def __init__(self, address: str, *, timeout: float) -> None:
        """Connect to ``HOST:PORT``; each call waits at most ``timeout`` seconds."""

    # ``version`` is a version number as text; "" lets the server choose (its newest).

    @abc.abstractmethod
    def model_ready(self, model: str, version: str = "") -> bool:
        """Whether the server has the model loaded and ready to infer."""

    @abc.abstractmethod
    def model_metadata(self, model: str, version: str = "") -> ModelSignature:
        """The model's inputs and outputs as the server declares them."""

    @abc.abstractmethod
    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        version: str = "",
    ) -> dict[str, np.ndarray]:
        """Run the model once on ``inputs``; return the named outputs."""

    @abc.abstractmethod
    def close(self) -> None: ...


def protocol_class(protocol: str) -> type[InferenceProtocol]:
    """The implementation of one of ``PROTOCOLS``, imported now."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use {' or '.join(PROTOCOLS)}")
    module_name, _, class_name = PROTOCOLS[protocol].partition(":")
    cls: type[InferenceProtocol] = getattr(importlib.import_module(module_name), class_name)
    return cls


def connect(protocol: str, address: str, *, timeout: float) -> InferenceProtocol:
    """Open a client of the given protocol (one of ``PROTOCOLS``) to ``HOST:PORT``."""
    return protocol_class(protocol)(address, timeout=timeout)


# What gRPC's C core says when the peer answered in HTTP/1 or with frames that are not HTTP/2.
_NOT_GRPC = ("Trying to connect an http1.x server", "Failed parsing HTTP/2")


def error_for_status(status: str, detail: str, address: str) -> Exception:
    """Our error for a gRPC status name (``UNAVAILABLE``, ``NOT_FOUND`` ...)."""
    status = status.removeprefix("StatusCode.")
    detail = " ".join(detail.split()) or status
    if status == "UNAVAILABLE":
        if any(sign in detail for sign in _NOT_GRPC):
            return errors.NotGrpcServerError(
                f"{address} answers, but not as a gRPC server: is it the HTTP port? ({detail})"
            )
        return errors.ServerUnavailableError(f"no server answering at {address} ({detail})")
    if status == "NOT_FOUND":
        return errors.ModelNotFoundError(f"{address}: {detail}")
    if status in {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "RESOURCE_EXHAUSTED"}:
        if "batch" in detail.lower():
            return errors.BatchTooLargeError(f"{address} refused the batch: {detail}")
        return errors.InputMismatchError(f"{address} refused the inputs: {detail}")
    if status == "DEADLINE_EXCEEDED":
        return errors.DeadlineExceededError(f"{address} did not answer within the deadline")
    return errors.ServerError(f"{address} failed: {status}: {detail}")
