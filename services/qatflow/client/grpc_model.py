"""What both gRPC task clients share: the published version's tokenizer, a signature check, and
requests cut to the size the server takes.

The server (OpenVINO Model Server, or another KServe v2 server) only runs the network;
tokenization and post-processing happen on the client with the same ``qatflow.core`` code the
HTTP services use. So the server must run the very version whose tokenizer the client read:
every request names it, and a server that does not serve it refuses instead of answering with
another model's logits.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from qatflow.client.errors import (
    BatchTooLargeError,
    InputMismatchError,
    ModelNotFoundError,
    VersionNotServedError,
)
from qatflow.client.protocol import InferenceProtocol, ModelSignature
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core.artifacts import ModelVersion

log = logging.getLogger("qatflow.client")


class GrpcModel:
    """``model`` (the served name) on a gRPC server, with tokenizer and sizes read from the
    published ``version``, whose number every request carries."""

    outputs: list[str]

    def __init__(
        self,
        protocol: InferenceProtocol,
        model: str,
        version: ModelVersion,
        *,
        retry: RetryPolicy | None = None,
        tokenizer: Any = None,
    ) -> None:
        self.protocol = protocol
        self.model = model
        self.version = version
        self.served_version = str(version.version)
        self.retry = retry or RetryPolicy()
        self.tokenizer = tokenizer if tokenizer is not None else version.tokenizer()
        self.max_length = int(version.manifest["max_seq_length"])
        self.inputs = [str(name) for name in version.manifest["inputs"]]
        self.batch_size: int | None = None
        """Most rows per request: the batch the server states (every request is padded to it)
        or the size it accepted after refusing a bigger one; None: all rows in one request."""
        self._stated_batch = False
        self.configure(version.manifest)

    def configure(self, manifest: dict[str, Any]) -> None:
        """Read the task's own fields of the manifest (outputs, sizes, labels)."""
        raise NotImplementedError

    def check(self) -> ModelSignature:
        """Fail early, with the reason, when the server does not serve this version of the model
        or the served model does not take what we send."""
        signature = self._metadata()
        if signature.inputs:
            self._check_inputs(signature)
        else:
            log.warning(
                "model %r at %s lists no inputs in its metadata: sending the published "
                "model's %s unchecked",
                self.model,
                self.protocol.address,
                self.inputs,
            )
        for name in self.outputs if signature.outputs else []:
            spec = signature.output(name)
            if spec is None or spec.dtype != "float32" or len(spec.shape) != 2:
                raise InputMismatchError(
                    f"model {self.model!r} lacks a float32 2-D output {name!r} "
                    f"(it has {[s.name for s in signature.outputs]})"
                )
        stated = {spec.shape[0] for spec in signature.inputs if spec.shape and spec.shape[0] > 0}
        if stated:
            self.batch_size, self._stated_batch = min(stated), True
        return signature

    def _metadata(self) -> ModelSignature:
        def metadata(version: str) -> ModelSignature:
            return with_retries(
                lambda: self.protocol.model_metadata(self.model, version),
                self.retry,
                f"metadata of model {self.model!r}",
            )

        try:
            return metadata(self.served_version)
        except ModelNotFoundError:
            try:
                served = metadata("")
            except ModelNotFoundError as error:
                raise ModelNotFoundError(f"model {self.model!r}: {error}") from None
        numbers = sorted((v for v in served.versions if v.isdigit()), key=int)
        listed = f" (it lists {', '.join(numbers)})" if numbers else ""
        raise VersionNotServedError(
            f"{self.protocol.address} serves model {self.model!r} but not its version "
            f"{self.served_version}, whose tokenizer was read from {self.version.path}{listed}: "
            "give --model-version of a version the server serves, or have it load this one"
        )

    def _check_inputs(self, signature: ModelSignature) -> None:
        for name in self.inputs:
            spec = signature.input(name)
            if spec is None:
                raise InputMismatchError(
                    f"model {self.model!r} has no input {name!r} "
                    f"(it takes {[s.name for s in signature.inputs]})"
                )
            if spec.dtype != "int64" or len(spec.shape) != 2:
                raise InputMismatchError(
                    f"model {self.model!r} input {name!r} is {spec.dtype}{list(spec.shape)}, "
                    "expected int64 [batch, sequence]"
                )
        unknown = [spec.name for spec in signature.inputs if spec.name not in self.inputs]
        if unknown:
            raise InputMismatchError(f"model {self.model!r} also requires inputs {unknown}")

    def infer(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """The model's outputs for every row of ``arrays``, in as few requests as the server
        takes, each retried while the server is unavailable."""
        inputs = {name: np.asarray(arrays[name]) for name in self.inputs}
        rows = len(inputs[self.inputs[0]])
        while True:
            size = self.batch_size or rows
            try:
                parts = [self._infer_rows(inputs, start, size) for start in range(0, rows, size)]
            except BatchTooLargeError as error:
                if self._stated_batch or min(size, rows) == 1:
                    raise
                self.batch_size = (min(size, rows) + 1) // 2
                log.warning(
                    "%s; sending at most %d rows per request from now on", error, self.batch_size
                )
                continue
            return {name: np.concatenate([part[name] for part in parts]) for name in self.outputs}

    def _infer_rows(self, inputs: dict[str, np.ndarray], start: int, size: int) -> dict[str, Any]:
        chunk = {name: array[start : start + size] for name, array in inputs.items()}
        count = len(chunk[self.inputs[0]])
        if self._stated_batch and count < size:
            # A stated batch is exact: fill it with copies of the last row, dropped afterwards.
            chunk = {
                name: np.concatenate([array, np.repeat(array[-1:], size - count, axis=0)])
                for name, array in chunk.items()
            }
        outputs = with_retries(
            lambda: self.protocol.infer(self.model, chunk, self.outputs, self.served_version),
            self.retry,
            f"inference on model {self.model!r}",
        )
        return {name: outputs[name][:count] for name in self.outputs}

    def close(self) -> None:
        self.protocol.close()
