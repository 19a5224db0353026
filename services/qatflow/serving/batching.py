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
version goes away with its last request. Every wake-up is aimed: a finished batch wakes its own
requests' threads and, if requests are left waiting, the thread of the oldest one to run next;
the other waiting threads sleep on, so the CPU the inference needs is not spent on threads that
wake only to wait again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Arrays = dict[str, np.ndarray]
# windows in one inference, and how long each request in it waited for it (seconds)
BatchObserver = Callable[[int, Sequence[float]], None]
# A request joins a batch only while the padded batch holds at most this many times its real
# tokens: past that, two inferences cost less than one padded one.
_MAX_PADDED_TO_REAL = 1.5


@dataclass(eq=False)
class _Caller:
    """One call of ``Batcher.run``: its thread sleeps on ``wake`` (the batcher's lock)."""

    wake: threading.Condition
    asleep: bool = False


@dataclass(eq=False)
class _Waiting:
    """Up to ``max_windows`` windows of one call, queued for an inference."""

    caller: _Caller
    arrays: Arrays
    rows: int
    width: int
    arrived: float = field(default_factory=time.perf_counter)
    passed_over: bool = False  # a batch left without it: it waits for company no longer
    done: bool = False
    outputs: Arrays | None = None
    error: BaseException | None = None


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
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a runner waiting for company sleeps here
        self._waiting: list[_Waiting] = []
        self._running = 0

    def run(self, arrays: Arrays) -> Arrays:
        """The outputs of ``arrays``' rows, computed in batches with other callers' rows; an
        error of the inference that held them, raised here (and only here)."""
        rows = len(next(iter(arrays.values())))
        caller = _Caller(threading.Condition(self._lock))
        parts = [
            _Waiting(
                caller,
                {name: array[first : first + self.max_windows] for name, array in arrays.items()},
                min(self.max_windows, rows - first),
                next(iter(arrays.values())).shape[1],
            )
            for first in range(0, rows, self.max_windows)
        ]
        with self._lock:
            self._waiting.extend(parts)
            self._arrived.notify_all()
            self._until_done(caller, parts)
        for part in parts:
            if part.error is not None:
                raise part.error
        outputs = [part.outputs for part in parts if part.outputs is not None]
        if len(outputs) == 1:
            return outputs[0]
        return {name: np.concatenate([output[name] for output in outputs]) for name in outputs[0]}

    def _until_done(self, caller: _Caller, parts: list[_Waiting]) -> None:
        """Run batches (the oldest request first) while a runner is free, else sleep until
        woken, until every one of ``parts`` is done (the lock held, released while inferring)."""
        while not all(part.done for part in parts):
            if not (self._waiting and self._running < self.runners):
                caller.asleep = True
                caller.wake.wait()
                caller.asleep = False  # also when the wait returned without a wake-up
                continue
            self._running += 1
            batch = self._gather()
            self._lock.release()
            try:
                self._infer_batch(batch)
            finally:
                self._lock.acquire()
                self._running -= 1
                for item in batch:
                    if item.outputs is None and item.error is None:  # interrupted (^C)
                        item.error = RuntimeError("inference interrupted")
                    item.done = True
                    _wake(item.caller)
                self._hand_over()

    def _hand_over(self) -> None:
        """Wake the thread of the oldest waiting request that sleeps, to run the next batch (the
        lock held). A thread that is running a batch takes the next one itself when it ends."""
        if not self._waiting or self._running >= self.runners:
            return
        for item in self._waiting:
            if item.caller.asleep:
                _wake(item.caller)
                return

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
            self._arrived.wait(left)
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
        """Fill in each item's outputs or error (without the lock; ``done`` is set under it)."""
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
                batch[0].error = error
                return
            # One request's bad input must not fail the others: run each alone to find it.
            for item in batch:
                item.arrived = started
                self._infer_batch([item])
            return
        first = 0
        for item in batch:
            item.outputs = {
                name: output[first : first + item.rows, : item.width]
                if name in self._sequence_outputs
                else output[first : first + item.rows]
                for name, output in outputs.items()
            }
            first += item.rows


def _wake(caller: _Caller) -> None:
    """Wake ``caller``'s thread if it sleeps (the lock held); it counts as awake from now on, so
    the next wake-up goes to another thread."""
    if caller.asleep:
        caller.asleep = False
        caller.wake.notify()


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
