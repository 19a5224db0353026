"""The inference backends a model is served by: each name defined once, here.

``qatflow serve`` runs one of the HTTP serving backends (``ServingBackend``); the chart's
``inference.backend`` chooses among those and OpenVINO Model Server (``INFERENCE_BACKENDS``).
Settings, CLI choices, the backend registry, the benchmark and the tests derive from these;
tests check the chart, the extras and the images against them.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# The qatflow HTTP services (``qatflow.serving.backends``), the first the default.
ServingBackend = Literal["optimum", "onnxruntime"]
SERVING_BACKENDS: Final[tuple[ServingBackend, ...]] = get_args(ServingBackend)
DEFAULT_SERVING_BACKEND: Final[ServingBackend] = SERVING_BACKENDS[0]

# OpenVINO Model Server: served by its own image, configured by ``qatflow.ovms``.
OVMS: Final = "ovms"
# What the chart's inference.backend accepts.
INFERENCE_BACKENDS: Final[tuple[str, ...]] = (*SERVING_BACKENDS, OVMS)
