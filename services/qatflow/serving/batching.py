"""Adaptive batching: the windows of concurrent requests share one inference.

Each request hands its padded windows to the batcher and waits. A free runner takes the oldest
waiting request, lets up to ``max_delay`` pass for others to arrive, adds the waiting requests
of the nearest lengths while the batch has room and padding stays cheap, pads them to one width,
runs one inference and hands each request its own rows back. Under load requests queue while
the runtime is busy and the next inference takes them together, so batching costs a lone
request nothing at a delay of 0 (MLServer's adaptive batching and Triton's dynamic batcher work
the same way).

No thread of its own: the requests' threads take turns as runners, at most ``runners`` at once
(the inferences the runtime runs in parallel), so a batcher needs no shutdown and an old model
version goes away with its last request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

Arrays = dict[str, np.ndarray]
# windows in one inference, and how long each request in it waited for it (seconds)
BatchObserver = Callable[[int, Sequence[float]], None]
# A request joins a batch only while the padded batch holds at most this many times its real
# tokens: past that, two inferences cost less than one padded one.
_MAX_PADDED_TO_REAL = 1.5


@dataclass(eq=False)
class _Waiting:
    arrays: Arrays
    rows: int
    width: int
    arrived: float = field(default_factory=time.perf_counter)
    passed_over: bool = False  # a batch left without it: it waits for company no longer
    result: Future[Arrays] = field(default_factory=Future)


class Batcher:
    """Groups concurrent calls of ``infer`` (``{input: [rows, width]}`` to ``{output: [rows,
    ...]}``); thread-safe."""

    def __init__(
        self,
        infer: Callable[[Arrays], Arrays],
        *,
        max_windows: int,
        max_delay: float,
        runners: int,
        pad_values: Mapping[str, int],
        sequence_outputs: Collection[str],
        observe: BatchObserver | None = None,
    ) -> None:
        self._infer = infer
        self.max_windows = max_windows
        self.max_delay = max_delay
        self.runners = runners
        self._pad_values = dict(pad_values)
        self._sequence_outputs = frozenset(sequence_outputs)
        self._observe = observe
        self._waiting: list[_Waiting] = []
        self._running = 0
        self._changed = threading.Condition()

    def run(self, arrays: Arrays) -> Arrays:
        """The outputs of ``arrays``' rows, computed in batches with other callers' rows; an
        error of the inference that held them, raised here (and only here)."""
        rows = len(next(iter(arrays.values())))
        parts = [
            _Waiting(
                {name: array[first : first + self.max_windows] for name, array in arrays.items()},
                min(self.max_windows, rows - first),
                next(iter(arrays.values())).shape[1],
            )
            for first in range(0, rows, self.max_windows)
        ]
        with self._changed:
            self._waiting.extend(parts)
            self._changed.notify_all()
        for part in parts:
            self._until_done(part)
        outputs = [part.result.result() for part in parts]
        if len(outputs) == 1:
            return outputs[0]
        return {name: np.concatenate([output[name] for output in outputs]) for name in outputs[0]}

    def _until_done(self, mine: _Waiting) -> None:
        """Wait for ``mine``, running batches (the oldest first) while a runner is free."""
        while not mine.result.done():
            with self._changed:
                while not mine.result.done() and not (
                    self._waiting and self._running < self.runners
                ):
                    self._changed.wait()
                if mine.result.done():
                    return
                self._running += 1
                batch = self._gather()
            try:
                self._infer_batch(batch)
            finally:
                for item in batch:  # only if the inference was interrupted (KeyboardInterrupt)
                    if not item.result.done():
                        item.result.set_exception(RuntimeError("inference interrupted"))
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def _gather(self) -> list[_Waiting]:
        """The next batch, taken off the queue (the lock held): the oldest request, then those
        nearest its length, once the batch is full, the oldest has waited ``max_delay``, or a
        batch has already left without it."""
        while True:
            if not self._waiting:  # another runner took them all meanwhile
                return []
            oldest = self._waiting[0]
            left = oldest.arrived + self.max_delay - time.perf_counter()
            full = sum(item.rows for item in self._waiting) >= self.max_windows
            if full or left <= 0 or oldest.passed_over:
                break
            self._changed.wait(left)
        batch, rows, width, real = [oldest], oldest.rows, oldest.width, oldest.rows * oldest.width
        for item in sorted(self._waiting[1:], key=lambda item: abs(item.width - oldest.width)):
            wider = max(width, item.width)
            if rows + item.rows > self.max_windows:
                continue
            if (rows + item.rows) * wider > _MAX_PADDED_TO_REAL * (real + item.rows * item.width):
                continue
            batch.append(item)
            rows, width, real = rows + item.rows, wider, real + item.rows * item.width
        for item in batch:
            self._waiting.remove(item)
        for item in self._waiting:
            item.passed_over = True
        return batch

    def _infer_batch(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        rows = sum(item.rows for item in batch)
        if self._observe is not None:
            self._observe(rows, [started - item.arrived for item in batch])
        try:
            outputs = self._infer(_stacked(batch, self._pad_values))
        except Exception as error:
            if len(batch) == 1:
                batch[0].result.set_exception(error)
                return
            # One request's bad input must not fail the others: run each alone to find it.
            for item in batch:
                item.arrived = started
                self._infer_batch([item])
            return
        first = 0
        for item in batch:
            item.result.set_result(
                {
                    name: output[first : first + item.rows, : item.width]
                    if name in self._sequence_outputs
                    else output[first : first + item.rows]
                    for name, output in outputs.items()
                }
            )
            first += item.rows


def _stacked(batch: list[_Waiting], pad_values: Mapping[str, int]) -> Arrays:
    """One array per input: every request's rows, padded to the widest."""
    if len(batch) == 1:
        return batch[0].arrays
    width = max(item.width for item in batch)
    stacked = {}
    for name in batch[0].arrays:
        parts = [
            np.pad(
                item.arrays[name],
                ((0, 0), (0, width - item.width)),
                constant_values=pad_values.get(name, 0),
            )
            for item in batch
        ]
        stacked[name] = np.concatenate(parts)
    return stacked
