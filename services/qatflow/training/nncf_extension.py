"""NNCF's C++ fake-quantize kernels for the CPU, built once per machine and safe to interrupt.

NNCF compiles them on the first fake-quantized forward (about 90 s on 2 cores) into torch's
extension cache, guarded by a lock *file*: a build that is killed leaves that file behind, and
every later run then waits on it for ever. ``ensure_built`` holds an OS lock instead (released
when its holder dies, however it dies), removes such a leftover file under it, and loads the
kernels into this process, so concurrent trainings build them once and a crash blocks nothing.

Inside a virtual environment they are built into it (``<venv>/var/torch_extensions``) unless
``TORCH_EXTENSIONS_DIR`` says otherwise: torch's shared default under ``~/.cache`` would make
two environments with different paths rebuild over each other's build. Deleting the
environment deletes them.

``python -m qatflow.training.nncf_extension`` builds them ahead: ``make install`` and the
training image do, so that no training waits for the compiler.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from pathlib import Path

# 0: no time limit. NNCF's default (60 s) is shorter than the build under load.
os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
if sys.prefix != sys.base_prefix:  # a virtual environment
    os.environ.setdefault(
        "TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "var" / "torch_extensions")
    )

import torch
from nncf.torch.quantization.extensions import QuantizedFunctionsCPU, QuantizedFunctionsCPULoader
from nncf.torch.quantization.reference import ReferenceQuantizedFunctions

log = logging.getLogger(__name__)

# torch.utils.cpp_extension's lock file inside the build directory (its FileBaton).
TORCH_LOCK_FILE = "lock"


class ExtensionBuildError(RuntimeError):
    """The kernels did not build: NNCF would fall back to much slower reference functions."""


def ensure_built() -> Path:
    """Build (or find) and load the kernels, check one fake-quant forward; the build directory."""
    build_dir = Path(QuantizedFunctionsCPULoader.get_build_dir())
    with (build_dir.parent / f"{build_dir.name}.qatflow-lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # whoever held it before us has finished or died
        leftover = build_dir / TORCH_LOCK_FILE
        if leftover.exists():
            log.warning("Removing %s, left behind by an interrupted build", leftover)
            leftover.unlink()
        started = time.monotonic()
        quantize = QuantizedFunctionsCPU.get("Quantize_forward")
        seconds = time.monotonic() - started
    if quantize is ReferenceQuantizedFunctions.Quantize_forward:
        raise ExtensionBuildError(
            f"NNCF's CPU kernels did not build in {build_dir} (is a C++ compiler installed?)"
        )
    _check(quantize)
    if seconds > 5:
        log.info("NNCF's CPU kernels built in %.0f s (%s)", seconds, build_dir)
    return build_dir


def _check(quantize) -> None:
    """A symmetric 8-bit fake-quantize of a ramp through the compiled kernel."""
    inputs = torch.linspace(-1.0, 1.0, steps=16).reshape(1, 16)
    outputs = quantize(inputs, torch.tensor([-1.0]), torch.tensor([2.0]), 256)
    if not torch.allclose(outputs, inputs, atol=2.0 / 255):
        raise ExtensionBuildError(f"NNCF's fake-quantize kernel returned {outputs.tolist()}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"NNCF CPU kernels ready in {ensure_built()}")
