"""The fine-tuning loop, shared by FP32 fine-tuning, distillation, sparse fine-tuning and
quantization-aware training."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from qatflow.core.logs import format_seconds

log = logging.getLogger(__name__)

# How a batch becomes the loss to minimise; the default is the task's own (labels in the batch).
Loss = Callable[[torch.nn.Module, dict[str, Any]], torch.Tensor]


def task_loss(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    return model(**batch).loss


def fine_tune(
    model: torch.nn.Module,
    batches: Iterable[dict[str, Any]],
    *,
    steps: int,
    learning_rate: float,
    warmup_ratio: float,
    weight_decay: float,
    log_every: int,
    label: str,
    loss_fn: Loss = task_loss,
    device: torch.device | None = None,
) -> dict[str, float | None]:
    """AdamW with linear warm-up and decay; logs loss, samples/s and ETA; returns the timings.

    ``model`` may be wrapped in DistributedDataParallel; ``batches`` are then this rank's share.
    """
    model.train()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not _no_decay(n)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and _no_decay(n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=learning_rate,
    )
    warmup = int(steps * warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            (step + 1) / max(1, warmup)
            if step < warmup
            else max(0.0, (steps - step) / max(1, steps - warmup))
        ),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    samples, running = 0, 0.0
    windows: list[float] = []  # mean loss of each logged window
    for step, batch in enumerate(batches, start=1):
        if device is not None:
            batch = {name: tensor.to(device) for name, tensor in batch.items()}
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{label}: loss became {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        samples += len(batch["input_ids"])
        running += loss.item()
        if step % log_every == 0 or step == steps:
            elapsed = time.perf_counter() - started
            windows.append(running / (log_every if step % log_every == 0 else step % log_every))
            log.info(
                "%s step %d/%d loss %.4f lr %.2e %.1f samples/s ETA %s",
                label,
                step,
                steps,
                windows[-1],
                schedule.get_last_lr()[0],
                samples / elapsed,
                format_seconds(elapsed / step * (steps - step)),
            )
            running = 0.0
    model.eval()
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        # CPU time of this process: on a shared machine, what the phase costs without the others
        "cpu_seconds": time.process_time() - cpu_started,
        "steps": steps,
        "seconds_per_step": elapsed / max(1, steps),
        "samples_per_second": samples / elapsed,
        "first_loss": windows[0] if windows else None,
        "last_loss": windows[-1] if windows else None,
    }


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
