"""Inference runtimes behind one interface; each imports its runtime only when chosen."""

from __future__ import annotations

import importlib

from qatflow.serving.backends.base import ModelBackend
from qatflow.serving.settings import ServeSettings

# --backend value -> class implementing it
BACKENDS = {
    "optimum": "qatflow.serving.backends.optimum:OptimumBackend",
    "onnxruntime": "qatflow.serving.backends.onnxruntime:OnnxRuntimeBackend",
}


def backend_class(name: str) -> type[ModelBackend]:
    module_name, _, class_name = BACKENDS[name].partition(":")
    cls: type[ModelBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_backend(settings: ServeSettings) -> ModelBackend:
    return backend_class(settings.backend)(settings)
