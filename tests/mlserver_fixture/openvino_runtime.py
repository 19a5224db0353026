"""TEST FIXTURE, not a product component: an MLServer runtime serving a published OpenVINO IR.

MLServer (Seldon's KServe v2 server) loads it from the model's folder, as any custom runtime,
in its own environment (``requirements.txt`` beside it). It is what a user would write to serve
the IR: compile it, check each request against the model's inputs, infer. It reads from the
model's ``model-settings.json``:

- ``parameters.uri``: the version folder holding the IR; ``parameters.version``: its number;
- ``inputs``: declared with a fixed first dimension N, each request must hold N rows;
- ``parameters.extra.max_batch``: requests of more rows are refused, a limit the metadata does
  not state.

Refusals are ``MLServerError`` with status 400, which MLServer's gRPC server turns into
``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import openvino as ov
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse


class OpenVinoRuntime(MLModel):
    async def load(self) -> bool:
        parameters = self.settings.parameters
        ir = min(Path(parameters.uri).glob("*.xml"))
        # f32 beside INT8, as the OVMS stand-in: the tests compare answers with plain OpenVINO,
        # and on AMX CPUs the default precision of the other ops is bf16.
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        self._compiled = ov.Core().compile_model(str(ir), "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()
        self._inputs = {
            port.get_any_name(): np.dtype(port.get_element_type().to_dtype())
            for port in self._compiled.inputs
        }
        stated = {t.shape[0] for t in self.settings.inputs if t.shape and t.shape[0] > 0}
        self._batch_size = min(stated, default=None)
        self._max_batch = (parameters.extra or {}).get("max_batch")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        arrays = {item.name: NumpyCodec.decode_input(item) for item in payload.inputs}
        self._check(arrays)
        results = await asyncio.to_thread(self._infer, arrays)
        wanted = [output.name for output in payload.outputs or []] or list(results)
        unknown = [name for name in wanted if name not in results]
        if unknown:
            raise MLServerError(f"unknown outputs {unknown}")
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output(name, results[name]) for name in wanted],
        )

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self._inputs) - set(arrays))
        if missing:
            raise MLServerError(f"missing inputs {missing}")
        unexpected = sorted(set(arrays) - set(self._inputs))
        if unexpected:
            raise MLServerError(f"unexpected inputs {unexpected}")
        for name, array in arrays.items():
            if array.dtype != self._inputs[name]:
                raise MLServerError(f"input {name} is {array.dtype}, not {self._inputs[name]}")
        rows = max(len(array) for array in arrays.values())
        if self._batch_size and rows != self._batch_size:
            raise MLServerError(f"batch of {rows} rows, the model takes {self._batch_size}")
        if self._max_batch and rows > self._max_batch:
            raise MLServerError(f"batch of {rows} rows is over the limit {self._max_batch}")

    def _infer(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            results = self._request.infer(arrays)
            return {port.get_any_name(): np.array(value) for port, value in results.items()}
