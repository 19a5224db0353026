"""Compile NNCF's CPU quantization extension at image build time and prove it runs.

Without this, the first fake-quantized forward of every training Job compiles it (about 90 s,
longer than NNCF's default load timeout under load). Run as the runtime user so the cache in
``TORCH_EXTENSIONS_DIR`` belongs to it.
"""

import torch
from nncf.torch.quantization.extensions import QuantizedFunctionsCPU, QuantizedFunctionsCPULoader
from nncf.torch.quantization.reference import ReferenceQuantizedFunctions

extension = QuantizedFunctionsCPULoader.load()
if extension is ReferenceQuantizedFunctions:
    raise SystemExit(
        "NNCF fell back to its slow reference functions: the C++ extension did not build"
    )

# A tiny symmetric 8-bit fake-quant forward through the compiled kernel.
inputs = torch.linspace(-1.0, 1.0, steps=16).reshape(1, 16)
low, range_ = torch.tensor([-1.0]), torch.tensor([2.0])
outputs = QuantizedFunctionsCPU.get("Quantize_forward")(inputs, low, range_, 256)
if not torch.allclose(outputs, inputs, atol=2.0 / 255):
    raise SystemExit(f"NNCF fake-quant forward returned unexpected values: {outputs}")
print(f"NNCF CPU extension ready in {QuantizedFunctionsCPULoader.get_build_dir()}")
