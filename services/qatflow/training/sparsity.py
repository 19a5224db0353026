"""Unstructured magnitude sparsity with ``nncf.prune``: the smallest weights of the encoder's
linear layers are masked to zero, and the masks stay applied through fine-tuning, NNCF
quantization and export (they are part of the model's forward), so the INT8 IR holds the
zeros too. Embeddings and the task head stay dense: they are small and sensitive."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import nncf
import torch

# Everything outside the transformer blocks (embeddings, pooler, task head) stays dense.
_DENSE = nncf.IgnoredScope(patterns=[r"^(?!.*(encoder|transformer)).*$"], validate=False)


def prune(model: torch.nn.Module, ratio: float, example: dict[str, Any]) -> torch.nn.Module:
    """Mask the ``ratio`` smallest-magnitude weights, ranked across all the encoder's layers."""
    model.eval()
    return nncf.prune(
        model,
        nncf.PruneMode.UNSTRUCTURED_MAGNITUDE_GLOBAL,
        ratio=ratio,
        ignored_scope=_DENSE,
        examples_inputs=example,
    )


def report(model: torch.nn.Module, target: float) -> dict[str, Any]:
    """Achieved sparsity, per pruned weight and in total, as ``metrics.json`` records it."""
    statistic = nncf.pruning_statistic(model)
    return {
        "target": target,
        "prunable": round(float(statistic.pruning_ratio), 4),
        "all_parameters": round(float(statistic.global_pruning_ratio), 4),
        "layers": {
            tensor.tensor_name: round(float(tensor.pruned_ratio), 4)
            for tensor in sorted(statistic.pruned_tensors, key=lambda t: t.tensor_name)
        },
    }


def ir_weight_sparsity(ir_path: Path) -> dict[str, Any]:
    """Zeros among the IR's int8 weights, and what they save once the weights are compressed
    (the IR stores them dense, so its size on disk does not change)."""
    import openvino as ov

    zeros = total = 0
    for op in ov.Core().read_model(ir_path).get_ordered_ops():
        if op.get_type_name() == "Constant" and op.get_output_element_type(0) == ov.Type.i8:
            data = op.get_data()
            zeros += int((data == 0).sum())
            total += int(data.size)
    weights = ir_path.with_suffix(".bin").read_bytes()
    return {
        "int8_weight_zeros": round(zeros / total, 4) if total else 0.0,
        "bin_bytes": len(weights),
        "bin_zlib_bytes": len(zlib.compress(weights, 6)),
    }
