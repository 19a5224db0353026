"""Text classification against a model served over gRPC (OpenVINO Model Server, KServe v2).

Tokenization and the softmax over labels happen here with ``qatflow.core.classification``,
the published model's tokenizer and the label names of its manifest, as in the HTTP services.
"""

from __future__ import annotations

from typing import Any

from qatflow.client.errors import BadInputError, InputMismatchError
from qatflow.client.grpc_model import GrpcModel
from qatflow.client.protocol import ModelSignature
from qatflow.core import classification

_LOGITS = "logits"


class GrpcTextClassification(GrpcModel):
    """Classifies with ``model`` on a gRPC server; labels come from ``version``'s manifest."""

    def configure(self, manifest: dict[str, Any]) -> None:
        self.labels = classification.labels_of(manifest)
        self.text_pair = classification.takes_text_pairs(manifest)
        self.outputs = [_LOGITS]

    def check(self) -> ModelSignature:
        signature = super().check()
        logits = signature.output(_LOGITS)
        classes = logits.shape[-1] if logits is not None else -1
        if classes not in (-1, len(self.labels)):
            raise InputMismatchError(
                f"model {self.model!r} has {classes} classes, its manifest lists "
                f"{len(self.labels)} labels"
            )
        return signature

    def classify(
        self, text: str, text_pair: str | None = None, *, top_k: int = 1
    ) -> list[classification.Prediction]:
        pairs = None if text_pair is None else [text_pair]
        return self.classify_many([text], pairs, top_k=top_k)[0]

    def classify_many(
        self, texts: list[str], text_pairs: list[str] | None = None, *, top_k: int = 1
    ) -> list[list[classification.Prediction]]:
        """Every text in one inference request (or as few as the server takes); text past
        max_seq_length is truncated."""
        mismatch = classification.text_pair_mismatch(self.text_pair, text_pairs is not None)
        if mismatch is not None:
            raise BadInputError(f"model {self.model!r} {mismatch}")
        arrays = classification.encode(
            self.tokenizer, texts, text_pairs, max_length=self.max_length
        )
        logits = self.infer(arrays)[_LOGITS]
        if logits.shape != (len(texts), len(self.labels)):
            raise InputMismatchError(
                f"output logits has shape {list(logits.shape)}, "
                f"not {[len(texts), len(self.labels)]}"
            )
        return classification.predictions(logits, self.labels, top_k=top_k)
