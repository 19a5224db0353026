"""ONNX Runtime backend: the published INT8 QDQ ONNX model on the OpenVINO Execution Provider only.

The QDQ model is fast only on the OpenVINO EP (2-3x slower on ORT's CPU EP), so running it
anywhere else would be a silent regression: the service refuses instead.
"""

from __future__ import annotations

import ctypes
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from qatflow.core import precision
from qatflow.core.artifacts import ModelVersion
from qatflow.serving.backends.base import ModelBackend
from qatflow.serving.errors import BackendUnavailableError
from qatflow.serving.settings import ServeSettings

PROVIDER = "OpenVINOExecutionProvider"
log = logging.getLogger("qatflow.serving")


class OnnxRuntimeBackend(ModelBackend):
    name = "onnxruntime"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self._session: Any = None
        self._output_names: list[str] = []
        self._plugin: precision.CpuPlugin | None = None

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

    @property
    def plugin(self) -> precision.CpuPlugin:
        """The CPU plugin of the OpenVINO that this ONNX Runtime bundles."""
        if self._plugin is None:
            self._plugin = bundled_cpu_plugin()
        return self._plugin

    def provider_options(self) -> dict[str, str]:
        """The EP's options as ORT takes them: every value a string."""
        return _as_text(self._options())

    def _options(self) -> dict[str, Any]:
        """Settings, then ``ort_provider_options`` on top (``load_config`` merged per device).

        The EP forces f32 on the CPU unless told otherwise, so the precision always goes in
        ``load_config`` (which the EP applies last): for ``auto``, the plugin's own default.
        """
        cpu = {
            "PERFORMANCE_HINT": self.settings.performance_hint,
            precision.HINT: self.plugin.resolve(self.settings.inference_precision),
        }
        options: dict[str, Any] = {"device_type": "CPU"}
        if self.settings.threads is not None:
            options["num_of_threads"] = self.settings.threads
        extra = dict(self.settings.ort_provider_options)
        load_config = _as_dict(extra.pop("load_config", {}))
        options["load_config"] = {
            **load_config,
            "CPU": {**cpu, **_as_dict(load_config.get("CPU", {}))},
        }
        options.update(extra)
        return options

    def _load_runtime(self, version: ModelVersion) -> None:
        import onnxruntime

        self.check_available()
        session_options = onnxruntime.SessionOptions()
        # A node the OpenVINO EP cannot take must fail the load, not run on the CPU EP.
        session_options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        options = self._options()
        self._session = onnxruntime.InferenceSession(
            str(version.onnx_path),
            sess_options=session_options,
            providers=[PROVIDER],
            provider_options=[_as_text(options)],
        )
        providers = self._session.get_providers()
        if PROVIDER not in providers:
            raise BackendUnavailableError(
                f"ONNX Runtime did not enable {PROVIDER} (got {providers})"
            )
        self._output_names = self.output_names(version)
        # The EP keeps one infer request per stream (num_streams, 1 unless given).
        self.parallel_inferences = int(options.get("num_streams", 1))
        self.inference_precision = self.plugin.resolve(
            str(options["load_config"]["CPU"][precision.HINT])
        )

    def _unload_runtime(self) -> None:
        self._session = None

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._session.run(self._output_names, inputs)  # thread-safe in ORT
        return {
            name: np.asarray(result)
            for name, result in zip(self._output_names, results, strict=True)
        }


def bundled_cpu_plugin() -> precision.CpuPlugin:
    """Ask the OpenVINO inside onnxruntime-openvino (through its C API: the wheel carries no
    OpenVINO Python package) for its CPU defaults; f32 if it cannot be asked."""
    import onnxruntime

    library = Path(onnxruntime.__file__).parent / "capi" / "libopenvino_c.so"
    try:
        api = ctypes.CDLL(str(library))
    except OSError as error:
        log.warning("cannot read the OpenVINO CPU plugin's defaults (%s); running at f32", error)
        return precision.CpuPlugin(default="f32", capabilities=("FP32",))
    api.ov_core_get_property.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_char_p),
    ]
    api.ov_free.argtypes = [ctypes.c_char_p]
    core = ctypes.c_void_p()
    _check(api.ov_core_create(ctypes.byref(core)), "ov_core_create")

    def cpu_property(key: str) -> str:
        value = ctypes.c_char_p()
        _check(
            api.ov_core_get_property(core, b"CPU", key.encode(), ctypes.byref(value)),
            f"ov_core_get_property(CPU, {key})",
        )
        text = (value.value or b"").decode()
        api.ov_free(value)
        return text

    try:
        return precision.CpuPlugin(
            default=cpu_property(precision.HINT),
            capabilities=tuple(cpu_property("OPTIMIZATION_CAPABILITIES").split()),
        )
    finally:
        api.ov_core_free(core)


def _check(status: int, call: str) -> None:
    if status != 0:
        raise BackendUnavailableError(f"OpenVINO C API {call} failed with status {status}")


def _as_dict(value: Any) -> dict[str, Any]:
    """A provider option that ORT takes as JSON text, given either way."""
    parsed = json.loads(value) if isinstance(value, str) else value
    return dict(parsed)


def _as_text(options: dict[str, Any]) -> dict[str, str]:
    return {key: _option_text(value) for key, value in options.items()}


def _option_text(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
