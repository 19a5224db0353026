"""Question answering against a model served over gRPC (OpenVINO Model Server, KServe v2).

Tokenization into stride windows and span selection happen here with ``qatflow.core.qa`` and
the published model's own tokenizer, as in the HTTP services.
"""

from __future__ import annotations

from typing import Any

from qatflow.client.errors import BadInputError, InputMismatchError
from qatflow.client.grpc_model import GrpcModel
from qatflow.core import qa
from qatflow.core.tasks import QUESTION_ANSWERING, TASK_OUTPUTS

_START, _END = TASK_OUTPUTS[QUESTION_ANSWERING]


class GrpcQuestionAnswering(GrpcModel):
    """Asks ``model`` on a gRPC server, reading tokenizer and window sizes from ``version``."""

    def configure(self, manifest: dict[str, Any]) -> None:
        self.doc_stride = int(manifest["doc_stride"])
        self.outputs = [_START, _END]
        self.max_answer_len = int(manifest.get("max_answer_length", 30))

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
        """Every window of every pair in one inference request, or in as few as the server
        takes."""
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
        outputs = self.infer(arrays)
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
