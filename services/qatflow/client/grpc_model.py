"""What both gRPC task clients share: the published version's tokenizer and a signature check.

The server (OpenVINO Model Server) only runs the network; tokenization and post-processing
happen on the client with the same ``qatflow.core`` code the HTTP services use.
"""

from __future__ import annotations

import logging
from typing import Any

from qatflow.client.errors import InputMismatchError
from qatflow.client.protocol import InferenceProtocol, ModelSignature
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core.artifacts import ModelVersion

log = logging.getLogger("qatflow.client")


class GrpcModel:
    """``model`` on a gRPC server, with tokenizer and sizes read from the published ``version``."""

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
        self.retry = retry or RetryPolicy()
        self.tokenizer = tokenizer if tokenizer is not None else version.tokenizer()
        self.max_length = int(version.manifest["max_seq_length"])
        self.inputs = [str(name) for name in version.manifest["inputs"]]
        self.configure(version.manifest)

    def configure(self, manifest: dict[str, Any]) -> None:
        """Read the task's own fields of the manifest (outputs, sizes, labels)."""
        raise NotImplementedError

    def check(self) -> ModelSignature:
        """Fail early, with the reason, when the served model does not take what we send."""
        signature = with_retries(
            lambda: self.protocol.model_metadata(self.model),
            self.retry,
            f"metadata of model {self.model!r}",
        )
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
        for name in self.outputs:
            spec = signature.output(name)
            if spec is None or spec.dtype != "float32" or len(spec.shape) != 2:
                raise InputMismatchError(
                    f"model {self.model!r} lacks a float32 2-D output {name!r} "
                    f"(it has {[s.name for s in signature.outputs]})"
                )
        if signature.version and signature.version != str(self.version.version):
            log.warning(
                "server serves version %s, the tokenizer is from version %s",
                signature.version,
                self.version.version,
            )
        return signature

    def infer(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """One inference request with the inputs the model takes, retried while unavailable."""
        inputs = {name: arrays[name] for name in self.inputs}
        return with_retries(
            lambda: self.protocol.infer(self.model, inputs, self.outputs),
            self.retry,
            f"inference on model {self.model!r}",
        )

    def close(self) -> None:
        self.protocol.close()
