"""Question answering against a model served over gRPC (OpenVINO Model Server).

The server only runs the network: tokenization into stride windows and span selection happen
here with ``qatflow.core.qa`` and the published model's own tokenizer, as in the HTTP services.
"""

from __future__ import annotations

import logging
from typing import Any

from qatflow.client.errors import BadInputError, InputMismatchError
from qatflow.client.protocol import InferenceProtocol, ModelSignature
from qatflow.client.retry import RetryPolicy, with_retries
from qatflow.core import qa
from qatflow.core.artifacts import ModelVersion

log = logging.getLogger("qatflow.client")

_START, _END = "start_logits", "end_logits"


class GrpcQuestionAnswering:
    """Asks ``model`` on a gRPC server, reading tokenizer and window sizes from ``version``."""

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
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(version.path)
        self.tokenizer = tokenizer
        self.max_length = int(version.manifest["max_seq_length"])
        self.doc_stride = int(version.manifest["doc_stride"])
        self.inputs = [str(name) for name in version.manifest["inputs"]]
        self.outputs = [_START, _END]
        self.max_answer_len = int(version.manifest.get("max_answer_length", 30))

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
                    f"model {self.model!r} lacks a float32 [batch, sequence] output {name!r}"
                )
        if signature.version and signature.version != str(self.version.version):
            log.warning(
                "server serves version %s, the tokenizer is from version %s",
                signature.version,
                self.version.version,
            )
        return signature

    def ask(
        self, question: str, context: str, *, top_k: int = 1, max_answer_len: int | None = None
    ) -> list[qa.Answer]:
        return self.ask_many([question], [context], top_k=top_k, max_answer_len=max_answer_len)[0]

    def ask_many(
        self,
        questions: list[str],
        contexts: list[str],
        *,
        top_k: int = 1,
        max_answer_len: int | None = None,
    ) -> list[list[qa.Answer]]:
        """One inference request holding every window of every pair."""
        try:
            features = qa.encode(
                self.tokenizer,
                questions,
                contexts,
                max_length=self.max_length,
                doc_stride=self.doc_stride,
            )
        except qa.QuestionTooLongError as error:
            raise BadInputError(str(error)) from None
        arrays = qa.pad(features, self.tokenizer.pad_token_id)
        inputs = {name: arrays[name] for name in self.inputs}
        outputs = with_retries(
            lambda: self.protocol.infer(self.model, inputs, self.outputs),
            self.retry,
            f"inference on model {self.model!r}",
        )
        expected = arrays["input_ids"].shape
        for name in self.outputs:
            if outputs[name].shape != expected:
                shape = list(outputs[name].shape)
                raise InputMismatchError(f"output {name} has shape {shape}, not {list(expected)}")
        return qa.best_answers(
            features,
            outputs[_START],
            outputs[_END],
            contexts,
            top_k=top_k,
            max_answer_len=max_answer_len or self.max_answer_len,
        )

    def close(self) -> None:
        self.protocol.close()
