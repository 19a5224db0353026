"""The machine and software a run was measured on: figures mean nothing without them."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Instruction sets that decide INT8 and BF16 speed on x86 CPUs.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
LIBRARIES = (
    "qatflow",
    "torch",
    "transformers",
    "nncf",
    "openvino",
    "optimum-intel",
    "onnxruntime-openvino",
    "onnx",
    "fastapi",
    "uvicorn",
    "httpx",
    "tritonclient",
)


def machine_info() -> dict[str, Any]:
    import psutil

    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpuinfo.get("model name", platform.processor() or "unknown"),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
        "openvino_cpu": _openvino_cpu(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "load_average_at_start": list(os.getloadavg()),
    }


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def isa_summary(info: dict[str, Any]) -> str:
    present = [flag for flag, found in info["isa"].items() if found]
    missing = [flag for flag, found in info["isa"].items() if not found]
    return f"has {', '.join(present) or 'none of the listed'}; lacks {', '.join(missing) or 'none'}"


def _cpuinfo() -> dict[str, str]:
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return {}
    fields: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def _openvino_cpu() -> dict[str, Any]:
    import openvino as ov

    from qatflow.core.precision import openvino_cpu_plugin

    plugin = openvino_cpu_plugin()
    return {
        "device": ov.Core().get_property("CPU", "FULL_DEVICE_NAME"),
        "capabilities": list(plugin.capabilities),
        # What "default precision" means here: bf16 only where the CPU has AMX.
        "default_inference_precision": plugin.default,
    }
