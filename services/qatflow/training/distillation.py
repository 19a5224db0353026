"""Knowledge distillation: a student learns the task from labels and from a teacher's logits.

The loss is ``(1 - alpha) * task loss + alpha * T^2 * KL(teacher || student)`` on every output
of the task (start and end logits for question answering, class logits for classification),
both softened by the temperature T; T^2 keeps the gradient scale independent of T.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


class DistillationError(ValueError):
    """A teacher or student that cannot be used."""


class DistillationLoss:
    """The training loss of a student guided by a frozen ``teacher``."""

    def __init__(
        self,
        teacher: torch.nn.Module,
        *,
        input_names: Sequence[str],
        output_names: Sequence[str],
        temperature: float,
        alpha: float,
        per_token: bool,
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.temperature = temperature
        self.alpha = alpha
        self.per_token = per_token  # logits over tokens (answer start/end), not over labels

    def __call__(self, student: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        outputs = student(**batch)
        inputs = {name: batch[name] for name in self.input_names if name in batch}
        with torch.no_grad():
            targets = self.teacher(**inputs)
        mask = batch.get("attention_mask")
        kl = torch.stack(
            [self.divergence(outputs[name], targets[name], mask) for name in self.output_names]
        ).mean()
        return (1 - self.alpha) * outputs.loss + self.alpha * kl

    def divergence(
        self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        t = self.temperature
        if self.per_token and mask is not None:
            # Padding is no answer-start or -end candidate for either model.
            padding = mask == 0
            student = student.masked_fill(padding, -1e4)
            teacher = teacher.masked_fill(padding, -1e4)
        return (
            F.kl_div(
                F.log_softmax(student.float() / t, dim=-1),
                F.log_softmax(teacher.float() / t, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
            * t
            * t
        )


def shrink(model: Any, layers: int) -> Any:
    """Keep the first ``layers`` transformer layers: a smaller, faster student."""
    encoder: Any = getattr(model.base_model, "encoder", None)
    blocks = getattr(encoder, "layer", None)
    if encoder is None or not isinstance(blocks, torch.nn.ModuleList):
        raise DistillationError(
            f"student_layers needs a BERT-style encoder (base_model.encoder.layer); "
            f"{type(model).__name__} has none"
        )
    if layers > len(blocks):
        raise DistillationError(
            f"student_layers is {layers} but the model has only {len(blocks)} layers"
        )
    encoder.layer = blocks[:layers]
    model.config.num_hidden_layers = layers
    return model


def check_compatible(teacher: Any, student: Any) -> None:
    """Teacher and student read the same token ids and predict the same outputs."""
    if teacher.config.vocab_size != student.config.vocab_size:
        raise DistillationError(
            f"teacher vocabulary ({teacher.config.vocab_size} tokens) differs from the "
            f"student's ({student.config.vocab_size}): they must share one tokenizer"
        )
    teacher_labels = getattr(teacher.config, "num_labels", None)
    if teacher_labels != getattr(student.config, "num_labels", None):
        raise DistillationError(
            f"teacher predicts {teacher_labels} labels, the student "
            f"{student.config.num_labels}: the teacher must be fine-tuned on the same labels"
        )
