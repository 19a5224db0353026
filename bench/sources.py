"""What a run measures: the published INT8 version, its FP32 source, the eval set, and the FP32
IR and ONNX converted here from that source so FP32 and INT8 go through the same runtimes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qatflow.core import artifacts

log = logging.getLogger("bench")


class BenchError(RuntimeError):
    """The run cannot start: no published model, unreadable inputs."""


@dataclass
class Sources:
    version: artifacts.ModelVersion
    metrics: dict[str, Any]
    fp32_dir: str
    fp32_origin: str  # "fp32_model_dir" or "source_model (fallback: untrained task head)"
    tokenizer: Any
    notes: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        return [str(name) for name in self.version.manifest["inputs"]]

    @property
    def outputs(self) -> list[str]:
        return [str(name) for name in self.version.manifest["outputs"]]

    @property
    def max_seq_length(self) -> int:
        return int(self.version.manifest["max_seq_length"])

    @property
    def doc_stride(self) -> int:
        return int(self.version.manifest["doc_stride"])


def load_sources(models_dir: Path, name: str | None) -> Sources:
    try:
        version = artifacts.find_latest(models_dir, name)
    except artifacts.ArtifactError as error:
        raise BenchError(str(error)) from None
    if version is None:
        raise BenchError(
            f"no published model under {models_dir}: run `make train` (or `make run`) first"
        )
    artifacts.verify(version)
    if version.task != "question-answering":
        raise BenchError(
            f"{version.name}/{version.version}: task {version.task!r} is not benchmarked"
        )
    try:
        metrics = version.metrics()
    except artifacts.ArtifactError:
        metrics = {}
    notes: list[str] = []
    fp32_dir, origin = _fp32_source(version, metrics, Path(models_dir), notes)
    tokenizer = version.tokenizer()
    return Sources(version, metrics, fp32_dir, origin, tokenizer, notes)


def _fp32_source(
    version: artifacts.ModelVersion, metrics: dict[str, Any], models_dir: Path, notes: list[str]
) -> tuple[str, str]:
    """The fine-tuned FP32 model the training job saved; the manifest's source model if gone."""
    recorded = metrics.get("fp32_model_dir")
    if recorded:
        # Recorded relative to the training job's working directory, or moved with the volume.
        for candidate in (Path(recorded), models_dir / ".work" / Path(recorded).name):
            if (candidate / "config.json").is_file():
                return str(candidate), "fp32_model_dir"
        notes.append(f"fp32_model_dir {recorded} not found")
    from qatflow.training.pipeline import resolve_model

    source = str(version.manifest.get("source_model", ""))
    if not source:
        raise BenchError(f"{version.path}: neither fp32_model_dir nor source_model is available")
    notes.append(
        f"FP32 baseline falls back to the manifest's source_model {source}: its task head is "
        "untrained, so FP32 accuracy is meaningless (speed and size still hold)"
    )
    log.warning(notes[-1])
    return resolve_model(source), "source_model (fallback)"


def eval_task(sources: Sources, eval_samples: int | None) -> Any:
    """The training job's own evaluation set and scorer, rebuilt from its recorded settings."""
    from qatflow.training.config import TrainingSettings
    from qatflow.training.question_answering import QuestionAnsweringTask

    saved = dict(sources.metrics.get("settings") or {})
    if not saved:
        sources.notes.append(
            "metrics.json has no training settings: evaluating on the embedded set"
        )
    saved.update(
        max_seq_length=sources.max_seq_length,
        doc_stride=sources.doc_stride,
        max_train_samples=1,  # the task loads a train split too; it is not used here
    )
    if eval_samples is not None:
        saved["max_eval_samples"] = min(eval_samples, saved.get("max_eval_samples") or eval_samples)
    settings = TrainingSettings.model_validate(saved)
    return QuestionAnsweringTask(settings, sources.tokenizer)


def convert_fp32(sources: Sources, model: Any, work_dir: Path) -> dict[str, Path]:
    """FP32 IR and ONNX of the FP32 source model, traced on two real windows."""
    import torch

    from bench import convert
    from qatflow.core import qa

    features = qa.encode(
        sources.tokenizer,
        ["What is converted?"] * 2,
        ["The model is converted to an intermediate representation.", "Twice, to trace a batch."],
        max_length=sources.max_seq_length,
        doc_stride=sources.doc_stride,
    )
    arrays = qa.pad(features, sources.tokenizer.pad_token_id)
    example = {name: torch.from_numpy(arrays[name]) for name in sources.inputs}
    onnx = convert.fp32_onnx(model, example, sources.outputs, work_dir / "fp32-onnx")
    return {"ir": convert.fp32_ir(onnx, work_dir / "fp32-ir"), "onnx": onnx}


def sizes(sources: Sources, fp32: dict[str, Path]) -> dict[str, int]:
    """Bytes on disk of every form of the model."""
    from bench.convert import ir_bytes

    def onnx_bytes(path: Path) -> int:
        # Weights over 2 GB go to external data files beside the model.
        return sum(p.stat().st_size for p in path.parent.iterdir() if p.is_file())

    weights = sorted(Path(sources.fp32_dir).glob("*.safetensors")) or sorted(
        Path(sources.fp32_dir).glob("*.bin")
    )
    return {
        "pytorch_fp32": sum(p.stat().st_size for p in weights),
        "ir_fp32": ir_bytes(fp32["ir"]),
        "ir_int8": ir_bytes(sources.version.ir_path),
        "onnx_fp32": onnx_bytes(fp32["onnx"]),
        "onnx_int8": onnx_bytes(sources.version.onnx_path),
    }
