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
    """Insert INT8 quantizers initialised on ``samples``: the post-training-quantized model."""
    nncf_extension.ensure_built()  # before any fake-quantized forward
    model.eval()
    return nncf.quantize(
        model,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
        # QAT trains the biases anyway; skipping the correction pass saves a third of the time.
        advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True),
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
