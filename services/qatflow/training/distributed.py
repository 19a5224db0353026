"""Training on several processes or nodes with torch.distributed, as launched by ``torchrun``.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process; one
process alone (no torchrun) is a world of one and nothing here does anything. Every rank runs
the same pipeline on the same data order and takes every WORLD_SIZE-th batch; gradients are
averaged by DistributedDataParallel, whose constructor also copies rank 0's parameters and
buffers (weights and quantizer scales alike) to every rank, so all ranks start each training
phase from one state. Only rank 0 evaluates, exports and publishes.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")
# Rank 0 evaluates and exports while the other ranks wait: allow it the time that takes.
_TIMEOUT = timedelta(hours=2)


class DistributedError(RuntimeError):
    """A torchrun environment that cannot be used."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> World:
        env = os.environ if environ is None else environ
        try:
            world = cls(
                rank=int(env.get("RANK", "0")),
                size=int(env.get("WORLD_SIZE", "1")),
                local_rank=int(env.get("LOCAL_RANK", "0")),
            )
        except ValueError as error:
            raise DistributedError(
                f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {error}"
            ) from None
        if world.size < 1 or not 0 <= world.rank < world.size:
            raise DistributedError(f"rank {world.rank} is outside a world of {world.size}")
        return world

    def start(self, device: torch.device) -> None:
        """Join the process group: gloo for CPU training, nccl for GPUs."""
        if not self.distributed:
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(
            backend, rank=self.rank, world_size=self.size, timeout=_TIMEOUT
        )
        log.info(
            "rank %d of %d joined (%s via %s:%s)",
            self.rank,
            self.size,
            backend,
            os.environ.get("MASTER_ADDR", "?"),
            os.environ.get("MASTER_PORT", "?"),
        )

    def stop(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model to train: DistributedDataParallel across ranks, or the model itself."""
        if not self.distributed:
            return model
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def steps(self, total: int) -> int:
        """Optimizer steps of each rank for ``total`` batches: the same count on every rank,
        or DDP would wait forever for a rank that has stopped."""
        if total < self.size:
            raise DistributedError(
                f"{total} training batches cannot feed {self.size} ranks; use more data or epochs"
            )
        return total // self.size

    def shard(self, batches: Iterable[T], total: int) -> Iterator[T]:
        """This rank's batches: every ``size``-th of the first ``total`` ones, from ``rank``."""
        return itertools.islice(batches, self.rank, self.steps(total) * self.size, self.size)

    def check_in_sync(self, model: torch.nn.Module, label: str) -> None:
        """Fail loudly if the ranks' copies of the model differ after a training phase."""
        if not self.distributed:
            return
        with torch.no_grad():
            state = [t.detach().double().sum() for t in model.state_dict().values()]
            checksum = torch.stack(state).sum().reshape(1)
        gathered = [torch.zeros_like(checksum) for _ in range(self.size)]
        torch.distributed.all_gather(gathered, checksum)
        values = [float(value) for value in gathered]
        if any(abs(value - values[0]) > 1e-6 * max(1.0, abs(values[0])) for value in values):
            raise DistributedError(f"{label}: ranks hold different models (checksums {values})")
        log.info("%s: all %d ranks hold the same model", label, self.size)


def select_device(choice: str, world: World) -> torch.device:
    """``cpu``, ``cuda`` (one GPU per local rank) or ``auto`` (a GPU when there is one)."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistributedError(
            "device is cuda but torch sees no GPU (CPU-only torch build, or no GPU in this "
            "pod: request nvidia.com/gpu); use device: cpu or auto"
        )
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise DistributedError(f"local rank {world.local_rank} has no GPU: {count} visible")
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)
