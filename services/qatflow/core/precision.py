"""Inference precision: what the OpenVINO CPU plugin computes the ops that are not INT8 in.

The INT8 layers of a published model run in int8 whatever is chosen here; LayerNorm, softmax,
the attention and the element-wise ops run at the plugin's inference precision: f32 by default
on most CPUs, bf16 by default where the CPU has AMX. Both backends ask their plugin for the same
precision and report the one it applies, so the two give the same answers on every CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

InferencePrecision = Literal["auto", "f32", "bf16", "f16"]
HINT = "INFERENCE_PRECISION_HINT"
# The OPTIMIZATION_CAPABILITIES entry by which the plugin says it can run a reduced precision.
_CAPABILITY = {"bf16": "BF16", "f16": "FP16"}


@dataclass(frozen=True)
class CpuPlugin:
    """What an OpenVINO CPU plugin says of this machine."""

    default: str
    """Its inference precision when none is asked for: ``f32``, or ``bf16`` on AMX CPUs."""
    capabilities: tuple[str, ...]
    """Its OPTIMIZATION_CAPABILITIES, e.g. ``("FP32", "BF16", "FP16", "INT8", ...)``."""

    def resolve(self, requested: str) -> str:
        """The precision the plugin computes at when ``requested`` is asked for: its default for
        ``auto``; f32 for a reduced precision this CPU cannot compute (the plugin falls back
        to f32 without a word, so the fallback is made visible here)."""
        if requested == "auto":
            return self.default
        capability = _CAPABILITY.get(requested)
        if capability is None or capability in self.capabilities:
            return requested
        return "f32"


def openvino_cpu_plugin() -> CpuPlugin:
    """The CPU plugin of the ``openvino`` Python package."""
    import openvino as ov

    core = ov.Core()
    return CpuPlugin(
        default=type_name(core.get_property("CPU", HINT)),
        capabilities=tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
    )


def type_name(value: Any) -> str:
    """``f32`` for ``ov.Type.f32`` (and for the text ``f32``)."""
    return str(value.to_string() if hasattr(value, "to_string") else value)
