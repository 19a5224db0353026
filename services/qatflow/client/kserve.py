"""KServe v2 (Open Inference Protocol) over gRPC with ``tritonclient``: what current OVMS speaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import (
    InferenceServerException,
    deserialize_bytes_tensor,
    np_to_triton_dtype,
    triton_to_np_dtype,
)

from qatflow.client.errors import ServerError
from qatflow.client.protocol import InferenceProtocol, ModelSignature, TensorSpec, error_for_status

T = TypeVar("T")

# Where a response that does not use raw bytes keeps each datatype's values (KServe v2 proto).
_TYPED_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class KServeProtocol(InferenceProtocol):
    name = "kserve"

    def __init__(self, address: str, *, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._client = grpcclient.InferenceServerClient(url=address)

    def server_live(self) -> bool:
        return self._call(lambda: self._client.is_server_live(client_timeout=self.timeout))

    def server_ready(self) -> bool:
        return self._call(lambda: self._client.is_server_ready(client_timeout=self.timeout))

    def model_ready(self, model: str, version: str = "") -> bool:
        return self._call(
            lambda: self._client.is_model_ready(model, version, client_timeout=self.timeout)
        )

    def model_metadata(self, model: str, version: str = "") -> ModelSignature:
        response = self._call(
            lambda: self._client.get_model_metadata(model, version, client_timeout=self.timeout)
        )
        return ModelSignature(
            name=response.name,
            versions=tuple(response.versions),
            inputs=tuple(_spec(tensor) for tensor in response.inputs),
            outputs=tuple(_spec(tensor) for tensor in response.outputs),
        )

    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        version: str = "",
    ) -> dict[str, np.ndarray]:
        request = []
        for name, array in inputs.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        wanted = [grpcclient.InferRequestedOutput(name) for name in outputs]
        result = self._call(
            lambda: self._client.infer(
                model, request, version, outputs=wanted, client_timeout=self.timeout
            )
        )
        response = result.get_response()
        arrays = {}
        for name in outputs:
            try:
                decoded = output_array(response, name)
            except ServerError as error:
                raise ServerError(f"{self.address}: {error}") from None
            if decoded is None:
                raise ServerError(f"{self.address}: the response lacks output {name!r}")
            arrays[name] = decoded
        return arrays

    def close(self) -> None:
        self._client.close()

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except InferenceServerException as error:
            raise error_for_status(
                error.status() or "UNKNOWN", error.message() or "", self.address
            ) from None


def output_array(response: Any, name: str) -> np.ndarray | None:
    """Output ``name`` of a ``ModelInferResponse``, whether the server sent it as raw bytes
    (OVMS, Triton) or as typed contents (``fp32_contents`` ...: MLServer, when the request was
    typed); None when the response lacks it."""
    index = next((i for i, out in enumerate(response.outputs) if out.name == name), None)
    if index is None:
        return None
    tensor = response.outputs[index]
    dtype = triton_to_np_dtype(tensor.datatype)
    if dtype is None:
        raise ServerError(f"output {name!r} has an unknown datatype {tensor.datatype!r}")
    if index < len(response.raw_output_contents):
        raw = response.raw_output_contents[index]
        if tensor.datatype == "BYTES":
            values = deserialize_bytes_tensor(raw)
        elif len(raw) % np.dtype(dtype).itemsize:
            raise ServerError(f"output {name!r}: {len(raw)} bytes is no whole number of {dtype}")
        else:
            values = np.frombuffer(raw, dtype=dtype)
    elif tensor.datatype in _TYPED_CONTENTS:
        values = np.asarray(getattr(tensor.contents, _TYPED_CONTENTS[tensor.datatype]), dtype=dtype)
    else:
        raise ServerError(f"output {name!r} ({tensor.datatype}) came without raw contents")
    shape = [int(dim) for dim in tensor.shape]
    if values.size != int(np.prod(shape)):
        raise ServerError(f"output {name!r} holds {values.size} values, not a shape of {shape}")
    return values.reshape(shape)


def _spec(tensor: object) -> TensorSpec:
    return TensorSpec(
        name=tensor.name,  # type: ignore[attr-defined]
        dtype=np.dtype(triton_to_np_dtype(tensor.datatype)).name,  # type: ignore[attr-defined]
        shape=tuple(int(dim) for dim in tensor.shape),  # type: ignore[attr-defined]
    )
