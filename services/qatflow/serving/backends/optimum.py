"""Optimum-Intel backend: ``OVModelForQuestionAnswering`` on the published INT8 OpenVINO IR."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from qatflow.core.artifacts import ModelVersion
from qatflow.serving.backends.base import QuestionAnsweringBackend
from qatflow.serving.errors import BackendUnavailableError
from qatflow.serving.settings import ServeSettings


class OptimumBackend(QuestionAnsweringBackend):
    name = "optimum"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self._model: Any = None
        # The model infers through one shared infer request, which is not safe to share.
        self._infer_lock = threading.Lock()

    @classmethod
    def check_available(cls) -> None:
        try:
            import openvino  # noqa: F401
            import optimum.intel  # noqa: F401
        except ImportError as error:
            raise BackendUnavailableError(
                f"the optimum backend needs optimum-intel and openvino ({error}); "
                "install qatflow[optimum]"
            ) from None

    def ov_config(self) -> dict[str, str]:
        config: dict[str, str] = {"PERFORMANCE_HINT": self.settings.performance_hint}
        if self.settings.threads is not None:
            config["INFERENCE_NUM_THREADS"] = str(self.settings.threads)
        return config

    def _load_runtime(self, version: ModelVersion) -> None:
        from optimum.intel import OVModelForQuestionAnswering

        self._model = OVModelForQuestionAnswering.from_pretrained(
            str(version.path),  # optimum's file lookup takes only a str
            file_name=str(version.ir_path.relative_to(version.path)),
            ov_config=self.ov_config(),
            export=False,
            compile=True,
        )

    def _unload_runtime(self) -> None:
        self._model = None

    def _logits(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with self._infer_lock:
            output = self._model(**inputs)
        return np.asarray(output.start_logits), np.asarray(output.end_logits)
