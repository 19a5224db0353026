"""KServe v2 (Open Inference Protocol) over gRPC with ``tritonclient``: what current OVMS speaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype, triton_to_np_dtype

from qatflow.client.errors import ServerError
from qatflow.client.protocol import InferenceProtocol, ModelSignature, TensorSpec, error_for_status

T = TypeVar("T")


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

    def model_ready(self, model: str) -> bool:
        return self._call(lambda: self._client.is_model_ready(model, client_timeout=self.timeout))

    def model_metadata(self, model: str) -> ModelSignature:
        response = self._call(
            lambda: self._client.get_model_metadata(model, client_timeout=self.timeout)
        )
        return ModelSignature(
            name=response.name,
            version=max(response.versions, key=int, default=""),
            inputs=tuple(_spec(tensor) for tensor in response.inputs),
            outputs=tuple(_spec(tensor) for tensor in response.outputs),
        )

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        request = []
        for name, array in inputs.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        wanted = [grpcclient.InferRequestedOutput(name) for name in outputs]
        result = self._call(
            lambda: self._client.infer(model, request, outputs=wanted, client_timeout=self.timeout)
        )
        arrays = {}
        for name in outputs:
            array = result.as_numpy(name)
            if array is None:
                raise ServerError(f"{self.address}: the response lacks output {name!r}")
            arrays[name] = array
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


def _spec(tensor: object) -> TensorSpec:
    return TensorSpec(
        name=tensor.name,  # type: ignore[attr-defined]
        dtype=np.dtype(triton_to_np_dtype(tensor.datatype)).name,  # type: ignore[attr-defined]
        shape=tuple(int(dim) for dim in tensor.shape),  # type: ignore[attr-defined]
    )
