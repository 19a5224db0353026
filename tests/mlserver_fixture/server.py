"""TEST FIXTURE: MLServer serving published IRs with ``openvino_runtime.py``, as a real process.

``MLServerProcess`` lays out an MLServer model repository (``settings.json``, and for each
served model a folder with ``model-settings.json`` and the runtime), starts ``mlserver start``
from MLServer's own environment on free 127.0.0.1 ports and waits until its gRPC server is
ready. It takes the same ``ModelSpec`` list as the OVMS stand-in's ``FixtureServer``, and says
in ``model-settings.json`` what a user would declare.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import openvino as ov
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import np_to_triton_dtype

from qatflow.local import free_port
from tests.ovms_fixture_server import LoopbackServer, ModelSpec, newest_version

RUNTIME = Path(__file__).with_name("openvino_runtime.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("QATFLOW_MLSERVER_VENV", REPO_ROOT / ".venv-mlserver"))


class MLServerProcess(LoopbackServer):
    """``models`` (a folder whose every model is served under its own name, or specs) served by
    MLServer; ``port`` the gRPC port (0: a free one)."""

    def __init__(self, models: Path | Sequence[ModelSpec], port: int = 0) -> None:
        self.specs = ModelSpec.every_model(models) if isinstance(models, Path) else list(models)
        typed = [spec.name for spec in self.specs if spec.typed_outputs]
        if typed:
            raise ValueError(f"MLServer answers in typed contents only to typed requests: {typed}")
        self.port = port
        self.rest_port = 0
        self.repository: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> MLServerProcess:
        mlserver = VENV / "bin" / "mlserver"
        if not mlserver.is_file():
            raise RuntimeError(f"MLServer is not installed at {VENV}: run `make install`")
        self.port = self.port or free_port()
        self.rest_port = free_port()
        self.repository = Path(tempfile.mkdtemp(prefix="mlserver-"))
        self._write_repository(self.repository)
        log = (self.repository / "mlserver.log").open("wb")
        self.process = subprocess.Popen(
            [str(mlserver), "start", str(self.repository)],
            cwd=self.repository,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _write_repository(self, root: Path) -> None:
        settings = {
            "host": "127.0.0.1",
            "grpc_port": self.port,
            "http_port": self.rest_port,
            "metrics_endpoint": None,
            "parallel_workers": 0,  # infer in the server process: one process to start and stop
            "debug": False,
        }
        (root / "settings.json").write_text(json.dumps(settings, indent=2))
        for spec in self.specs:
            version = newest_version(spec.path)
            if version is None:
                continue
            folder = root / spec.name
            folder.mkdir()
            shutil.copy(RUNTIME, folder / RUNTIME.name)
            (folder / "model-settings.json").write_text(
                json.dumps(model_settings(spec, version), indent=2)
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"MLServer exited during start-up:\n{self.log_tail()}")
                try:
                    if stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=2).ready:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.3)
        raise RuntimeError(f"MLServer not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        log = self.repository / "mlserver.log" if self.repository else None
        if log is None or not log.is_file():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        super().stop()
        if self.repository is not None:
            shutil.rmtree(self.repository, ignore_errors=True)
            self.repository = None


def model_settings(spec: ModelSpec, version: Path) -> dict[str, object]:
    """What a user declares to serve this version of the IR under ``spec.name``."""
    parameters = {"uri": str(version), "extra": {"max_batch": spec.max_batch}}
    if spec.versioned:
        parameters["version"] = version.name  # without it, a versioned request finds no model
    settings: dict[str, object] = {
        "name": spec.name,
        "implementation": f"{RUNTIME.stem}.OpenVinoRuntime",
        "parameters": parameters,
    }
    if spec.tensor_metadata:
        model = ov.Core().read_model(min(version.glob("*.xml")))
        settings["inputs"] = [_tensor(port, spec.batch_size) for port in model.inputs]
        settings["outputs"] = [_tensor(port, None) for port in model.outputs]
    return settings


def _tensor(port: ov.Output, batch_size: int | None) -> dict[str, object]:
    shape = [-1 if dim.is_dynamic else dim.get_length() for dim in port.get_partial_shape()]
    if batch_size:
        shape[0] = batch_size
    return {
        "name": port.get_any_name(),
        "datatype": np_to_triton_dtype(port.get_element_type().to_dtype()),
        "shape": shape,
    }
