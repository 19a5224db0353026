"""The TF-Serving gRPC API with ``ovmsclient``, for OVMS images from before its removal."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np
from ovmsclient import make_grpc_client
from ovmsclient.tfs_compat.base.errors import (
    BadResponseError,
    InvalidInputError,
    ModelNotFoundError,
    ModelServerError,
)
from ovmsclient.tfs_compat.grpc.tensors import TENSOR_TO_NP_MAP
from ovmsclient.tfs_compat.protos.tensorflow.core.framework.types_pb2 import DataType

from qatflow.client.errors import ServerError
from qatflow.client.protocol import InferenceProtocol, ModelSignature, TensorSpec, error_for_status

T = TypeVar("T")
_LATEST = 0  # TF-Serving's "the newest version"


class TfServingProtocol(InferenceProtocol):
    name = "tfs"

    def __init__(self, address: str, *, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._client = make_grpc_client(address)

    def model_ready(self, model: str, version: str = "") -> bool:
        status = self._call(
            lambda: self._client.get_model_status(model, _number(version), timeout=self.timeout)
        )
        return any(entry["state"] == "AVAILABLE" for entry in status.values())

    def model_metadata(self, model: str, version: str = "") -> ModelSignature:
        metadata = self._call(
            lambda: self._client.get_model_metadata(model, _number(version), timeout=self.timeout)
        )
        return ModelSignature(
            name=model,
            versions=(str(metadata["model_version"]),),
            inputs=_specs(metadata["inputs"]),
            outputs=_specs(metadata["outputs"]),
        )

    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        version: str = "",
    ) -> dict[str, np.ndarray]:
        result = self._call(
            lambda: self._client.predict(
                dict(inputs), model, _number(version), timeout=self.timeout
            )
        )
        # ovmsclient returns a bare array when the model has one output.
        arrays = result if isinstance(result, dict) else {outputs[0]: result}
        missing = [name for name in outputs if name not in arrays]
        if missing:
            raise ServerError(f"{self.address}: the response lacks outputs {missing}")
        return {name: arrays[name] for name in outputs}

    def close(self) -> None:
        self._client.channel.close()

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (ModelServerError, ConnectionError, TimeoutError) as error:
            # ovmsclient raises inside its ``except RpcError``: the gRPC status is the context.
            cause = error.__context__
            if isinstance(cause, grpc.RpcError) and hasattr(cause, "code"):
                raise error_for_status(
                    cause.code().name, cause.details() or "", self.address
                ) from None
            raise error_for_status(_status_of(error), str(error), self.address) from None


def _number(version: str) -> int:
    return int(version) if version else _LATEST


def _status_of(error: Exception) -> str:
    if isinstance(error, ModelNotFoundError):
        return "NOT_FOUND"
    if isinstance(error, InvalidInputError):
        return "INVALID_ARGUMENT"
    if isinstance(error, TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(error, BadResponseError):
        return "INTERNAL"
    return "UNAVAILABLE" if isinstance(error, ConnectionError) else "UNKNOWN"


def _specs(tensors: dict[str, Any]) -> tuple[TensorSpec, ...]:
    return tuple(
        TensorSpec(
            name=name,
            dtype=np.dtype(TENSOR_TO_NP_MAP[DataType.Value(info["dtype"])]).name,
            shape=tuple(int(dim) for dim in info["shape"]),
        )
        for name, info in tensors.items()
    )
