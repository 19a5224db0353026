"""ONNX Runtime backend: the published INT8 QDQ ONNX model on the OpenVINO Execution Provider only.

The QDQ model is fast only on the OpenVINO EP (2-3x slower on ORT's CPU EP), so running it
anywhere else would be a silent regression: the service refuses instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qatflow.core.artifacts import ModelVersion
from qatflow.serving.backends.base import ModelBackend
from qatflow.serving.errors import BackendUnavailableError
from qatflow.serving.settings import ServeSettings

PROVIDER = "OpenVINOExecutionProvider"


class OnnxRuntimeBackend(ModelBackend):
    name = "onnxruntime"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self._session: Any = None
        self._output_names: list[str] = []

    @classmethod
    def check_available(cls) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise BackendUnavailableError(
                f"the onnxruntime backend needs onnxruntime-openvino ({error}); "
                "install qatflow[onnxruntime]"
            ) from None
        available = onnxruntime.get_available_providers()
        if PROVIDER not in available:
            raise BackendUnavailableError(
                f"ONNX Runtime {onnxruntime.__version__} has no {PROVIDER} (available: "
                f"{', '.join(available)}); install onnxruntime-openvino, not plain onnxruntime"
            )

    def provider_options(self) -> dict[str, str]:
        """Settings, then ``ort_provider_options`` on top; ORT wants every value as a string."""
        options: dict[str, Any] = {"device_type": "CPU"}
        if self.settings.threads is not None:
            options["num_of_threads"] = self.settings.threads
        options["load_config"] = {"CPU": {"PERFORMANCE_HINT": self.settings.performance_hint}}
        options.update(self.settings.ort_provider_options)
        return {key: _option_text(value) for key, value in options.items()}

    def _load_runtime(self, version: ModelVersion) -> None:
        import onnxruntime

        self.check_available()
        session_options = onnxruntime.SessionOptions()
        # A node the OpenVINO EP cannot take must fail the load, not run on the CPU EP.
        session_options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        self._session = onnxruntime.InferenceSession(
            str(version.onnx_path),
            sess_options=session_options,
            providers=[PROVIDER],
            provider_options=[self.provider_options()],
        )
        providers = self._session.get_providers()
        if PROVIDER not in providers:
            raise BackendUnavailableError(
                f"ONNX Runtime did not enable {PROVIDER} (got {providers})"
            )
        self._output_names = self.output_names(version)

    def _unload_runtime(self) -> None:
        self._session = None

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._session.run(self._output_names, inputs)  # thread-safe in ORT
        return {
            name: np.asarray(result)
            for name, result in zip(self._output_names, results, strict=True)
        }


def _option_text(value: Any) -> str:
    import json

    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
