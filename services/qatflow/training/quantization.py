"""NNCF 3.x post-training calibration, the starting point of quantization-aware training."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nncf
import nncf.torch
import torch
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

from qatflow.training import nncf_extension


def calibrate(model: torch.nn.Module, samples: list[dict[str, Any]]) -> torch.nn.Module:
    """Insert INT8 quantizers initialised on ``samples``: the post-training-quantized model, with
    one quantizer per quantized tensor (see ``share_input_quantizers``)."""
    nncf_extension.ensure_built()  # before any fake-quantized forward
    model.eval()
    quantized = nncf.quantize(
        model,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
        # QAT trains the biases anyway; skipping the correction pass saves a third of the time.
        advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
    )
    share_input_quantizers(quantized, samples[0])
    return quantized


def share_input_quantizers(model: torch.nn.Module, sample: dict[str, Any]) -> int:
    """Make the quantizers of one tensor's consumers one quantizer; returns how many went.

    NNCF gives each consumer its own input quantizer: the Q, K and V projections each quantize
    the same LayerNorm output. Calibration gives the three the same range, QAT then trains them
    apart, and the exported IR keeps three FakeQuantize ops that OpenVINO cannot fuse. Shared
    (NNCF's unified-scale form: one module hooked at several places), they stay one range, and
    the IR one FakeQuantize. Quantizers count as one tensor's when their inputs on ``sample``
    and their calibrated parameters are identical.
    """
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer

    storage = get_hook_storage(model)
    hooks = [
        (name, module)
        for name, module in storage.named_hooks(remove_duplicate=False)
        if isinstance(module, BaseQuantizer)
    ]
    inputs: dict[int, torch.Tensor] = {}

    def record(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        inputs.setdefault(id(module), args[0].detach().clone())

    handles = [module.register_forward_pre_hook(record) for _, module in hooks]
    try:
        with torch.no_grad():
            model(**sample)
    finally:
        for handle in handles:
            handle.remove()
    kept: list[torch.nn.Module] = []
    merged = 0
    for name, module in hooks:
        twin = next((k for k in kept if _same_quantizer(k, module, inputs)), None)
        if twin is None:
            kept.append(module)
            continue
        storage.delete_hook(name)
        storage.insert_hook_by_name(name, twin)
        merged += 1
    return merged


def _same_quantizer(
    a: torch.nn.Module, b: torch.nn.Module, inputs: dict[int, torch.Tensor]
) -> bool:
    """Same kind, same calibrated parameters, and the very same input values."""
    if type(a) is not type(b) or id(a) not in inputs or id(b) not in inputs:
        return False
    x, y = inputs[id(a)], inputs[id(b)]
    if x.shape != y.shape or not torch.equal(x, y):
        return False
    state_a, state_b = a.state_dict(), b.state_dict()
    return state_a.keys() == state_b.keys() and all(
        torch.equal(state_a[key], state_b[key]) for key in state_a
    )


def save_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """Quantizer layout and weights: enough to rebuild the model with ``load_checkpoint``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent runs: one tmp each
    torch.save({"nncf_config": nncf.torch.get_config(model), "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(fresh_model: torch.nn.Module, path: Path) -> torch.nn.Module:
    nncf_extension.ensure_built()
    checkpoint = torch.load(path, weights_only=False)
    model = nncf.torch.load_from_config(fresh_model, checkpoint["nncf_config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def quantizer_count(model: torch.nn.Module) -> int:
    from nncf.torch.quantization.layers import BaseQuantizer

    return sum(isinstance(module, BaseQuantizer) for module in model.modules())
