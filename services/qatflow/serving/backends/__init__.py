"""Inference runtimes behind one interface; each imports its runtime only when chosen."""

from __future__ import annotations

import importlib

from qatflow.core.backends import ServingBackend
from qatflow.serving.backends.base import ModelBackend
from qatflow.serving.settings import ServeSettings

# Each of core's serving backends -> the class implementing it (tests/core/test_backends.py
# checks that every one has its class).
BACKENDS: dict[ServingBackend, str] = {
    "optimum": "qatflow.serving.backends.optimum:OptimumBackend",
    "onnxruntime": "qatflow.serving.backends.onnxruntime:OnnxRuntimeBackend",
}


def backend_class(name: ServingBackend) -> type[ModelBackend]:
    module_name, _, class_name = BACKENDS[name].partition(":")
    cls: type[ModelBackend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_backend(settings: ServeSettings) -> ModelBackend:
    return backend_class(settings.backend)(settings)
