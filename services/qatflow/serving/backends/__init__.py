"""Inference runtimes behind one interface; each imports its runtime only when chosen."""

from __future__ import annotations

import importlib

from qatflow.serving.backends.base import QuestionAnsweringBackend
from qatflow.serving.settings import ServeSettings

# --backend value -> class implementing it
BACKENDS = {
    "optimum": "qatflow.serving.backends.optimum:OptimumBackend",
    "onnxruntime": "qatflow.serving.backends.onnxruntime:OnnxRuntimeBackend",
}


def backend_class(name: str) -> type[QuestionAnsweringBackend]:
    module_name, _, class_name = BACKENDS[name].partition(":")
    cls: type[QuestionAnsweringBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_backend(settings: ServeSettings) -> QuestionAnsweringBackend:
    return backend_class(settings.backend)(settings)
