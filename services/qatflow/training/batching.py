"""Training batches shared by every task."""

from __future__ import annotations

import random
from collections.abc import Iterator


def length_grouped_batches(
    lengths: list[int], steps: int, batch_size: int, rng: random.Random
) -> Iterator[list[int]]:
    """Random batches of windows of similar length: far less padding than random batches.

    Shuffle, sort within chunks of 32 batches by length, then shuffle the batches' order.
    """
    order: list[int] = []
    while len(order) < steps * batch_size:
        epoch = list(range(len(lengths)))
        rng.shuffle(epoch)
        order.extend(epoch)
    order = order[: steps * batch_size]
    chunk = batch_size * 32
    batches = []
    for begin in range(0, len(order), chunk):
        ranked = sorted(order[begin : begin + chunk], key=lambda i: lengths[i])
        batches += [ranked[i : i + batch_size] for i in range(0, len(ranked), batch_size)]
    rng.shuffle(batches)
    yield from batches
