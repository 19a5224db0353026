"""Optimum-Intel backend: ``OVModelForQuestionAnswering`` or ``OVModelForSequenceClassification``
(whichever the manifest's task names) on the published INT8 OpenVINO IR."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np

from qatflow.core import precision
from qatflow.core.artifacts import ModelVersion
from qatflow.serving.backends.base import QUESTION_ANSWERING, TEXT_CLASSIFICATION, ModelBackend
from qatflow.serving.errors import BackendUnavailableError
from qatflow.serving.settings import ServeSettings

# task -> Optimum-Intel class that loads and compiles its IR
MODEL_CLASSES = {
    QUESTION_ANSWERING: "OVModelForQuestionAnswering",
    TEXT_CLASSIFICATION: "OVModelForSequenceClassification",
}


class OptimumBackend(ModelBackend):
    name = "optimum"

    def __init__(self, settings: ServeSettings) -> None:
        super().__init__(settings)
        self._model: Any = None
        self._output_names: list[str] = []
        # An infer request serves one caller at a time; the pool holds as many as the compiled
        # model runs in parallel (more would only queue inside OpenVINO).
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

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
        if self.settings.inference_precision != "auto":  # auto: the plugin's own choice
            config[precision.HINT] = self.settings.inference_precision
        return config

    def _load_runtime(self, version: ModelVersion) -> None:
        import optimum.intel
        from transformers import AutoConfig

        model_class = getattr(optimum.intel, MODEL_CLASSES[version.task])
        # A published version is a local IR, already converted: read it and give it to the class
        # as its constructor expects. from_pretrained would first look the directory up as a hub
        # id in the hub cache (offline mode forces that) and print the failed lookup as a warning.
        self._model = model_class(
            model_class.load_model(version.ir_path),
            config=AutoConfig.from_pretrained(version.path),
            ov_config=self.ov_config(),
            model_save_dir=version.path,
            compile=True,
        )
        compiled = self._model.request  # the CompiledModel Optimum built with our ov_config
        self.inference_precision = precision.type_name(compiled.get_property(precision.HINT))
        self._output_names = self.output_names(version)
        declared = {name for port in compiled.outputs for name in port.get_names()}
        missing = [name for name in self._output_names if name not in declared]
        if missing:
            raise ValueError(f"{version.ir_path.name} lacks the outputs {missing}")
        self.parallel_inferences = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        for _ in range(self.parallel_inferences):
            self._requests.put(compiled.create_infer_request())

    def _unload_runtime(self) -> None:
        self._model = None
        self._requests = queue.SimpleQueue()

    def _infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = self._requests.get()
        try:
            # No copy into the runtime; its output buffers are copied once, before the next
            # call reuses them.
            results = request.infer(inputs, share_inputs=True, share_outputs=True)
            return {name: np.array(results[name], copy=True) for name in self._output_names}
        finally:
            self._requests.put(request)
