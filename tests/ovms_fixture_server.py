"""TEST FIXTURE, not a product component: a stand-in for OpenVINO Model Server.

OVMS cannot be installed here, so the client is tested against this gRPC server. It serves the
same repository layout OVMS reads (``<models_dir>/<name>/<version>/*.xml``, newest numeric
version) with the OpenVINO runtime, over the two gRPC APIs OVMS has spoken:

- KServe v2 ``GRPCInferenceService``: ServerLive, ServerReady, ModelReady, ModelMetadata,
  ModelInfer (servicer base classes from ``tritonclient.grpc``);
- TF-Serving ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService``
  (GetModelStatus), from the protos shipped inside ``ovmsclient``.

Errors use the status codes OVMS uses: NOT_FOUND for an unknown model or version,
INVALID_ARGUMENT for missing/unexpected inputs, wrong precision, rank or batch size. Beside the
gRPC port it answers OVMS's REST health paths over HTTP/1 (``/v2/health/live``,
``/v2/health/ready``, ``/v2/models/<name>/ready``): a port that is not a gRPC one.

Each served model is a ``ModelSpec``: a served name, a folder of numbered versions, and what
the server tells and takes (tensor metadata or none, a stated batch size, an unstated limit,
answers in typed contents), so one server can play the several servers a client meets.

Run: ``python tests/ovms_fixture_server.py --models-dir DIR`` (or ``--models JSON``, a list of
specs) prints ``PORT <grpc> REST <http>`` once serving on 127.0.0.1, and stops on SIGTERM.
``FixtureServer`` does that from a test.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent import futures
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
from google.protobuf import any_pb2
from ovmsclient.tfs_compat.grpc.tensors import (
    NP_TO_TENSOR_MAP,
    make_ndarray,
    make_tensor_proto,
)
from ovmsclient.tfs_compat.protos.tensorflow.core.framework import tensor_shape_pb2
from ovmsclient.tfs_compat.protos.tensorflow.core.protobuf import meta_graph_pb2
from ovmsclient.tfs_compat.protos.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import np_to_triton_dtype, triton_to_np_dtype


@dataclass(frozen=True)
class ModelSpec:
    """One model a test server serves: the newest version under ``path``, as ``name``."""

    name: str
    path: Path
    """``<models_dir>/<model>``, holding numbered version folders."""

    tensor_metadata: bool = True
    """List the inputs and outputs in the model's metadata (MLServer lists none by default)."""

    batch_size: int | None = None
    """A fixed batch, stated in the metadata's input shapes; requests of other sizes are refused
    (OVMS's ``batch_size`` setting)."""

    max_batch: int | None = None
    """A limit the metadata does not state: requests of more rows are refused."""

    typed_outputs: bool = False
    """Answer in typed contents (``fp32_contents`` ...) instead of raw bytes (the stand-in only)."""

    versioned: bool = True
    """Serve the model as its version number; False: MLServer without ``parameters.version``
    (the stand-in, as OVMS, always serves numbered versions)."""

    @classmethod
    def every_model(cls, models_dir: Path) -> list[ModelSpec]:
        """Each model folder under ``models_dir``, under its own name, as OVMS would serve it."""
        return [cls(p.name, p) for p in sorted(Path(models_dir).iterdir()) if newest_version(p)]

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ModelSpec:
        return cls(**{**data, "path": Path(str(data["path"]))})  # type: ignore[arg-type]


def newest_version(model_dir: Path) -> Path | None:
    """The highest positive numbered folder holding an IR, as OVMS's default version policy."""
    if not model_dir.is_dir():
        return None
    versions = sorted(
        (int(p.name), p)
        for p in model_dir.iterdir()
        if p.name.isdigit() and int(p.name) > 0 and any(p.glob("*.xml"))
    )
    return versions[-1][1] if versions else None


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class ServedModel:
    spec: ModelSpec
    version: int
    compiled: ov.CompiledModel
    request: ov.InferRequest
    lock: threading.Lock
    inputs: dict[str, tuple[np.dtype, int]]  # name -> (dtype, rank)
    outputs: dict[str, np.dtype]

    @property
    def name(self) -> str:
        return self.spec.name

    def shape(self, port: ov.ConstOutput, *, is_input: bool) -> list[int]:
        """A port's shape as the metadata states it: -1 if dynamic; an input's fixed batch."""
        shape = [-1 if d.is_dynamic else d.get_length() for d in port.get_partial_shape()]
        if is_input and self.spec.batch_size:
            shape[0] = self.spec.batch_size
        return shape

    def infer(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_batch(arrays)
        missing = sorted(set(self.inputs) - set(arrays))
        if missing:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Missing inputs: {missing}")
        unexpected = sorted(set(arrays) - set(self.inputs))
        if unexpected:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Unexpected inputs: {unexpected}")
        for name, array in arrays.items():
            dtype, rank = self.inputs[name]
            if array.dtype != dtype:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Invalid input precision of {name} - Expected: {dtype}; Actual: {array.dtype}",
                )
            if array.ndim != rank:
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Invalid number of shape dimensions of {name} - Expected: {rank}; "
                    f"Actual: {array.ndim}",
                )
        with self.lock:
            results = self.request.infer(arrays)
            return {
                port.get_any_name(): np.array(value, copy=True) for port, value in results.items()
            }

    def _check_batch(self, arrays: dict[str, np.ndarray]) -> None:
        batch = max((len(array) for array in arrays.values() if array.ndim), default=0)
        expected = self.spec.batch_size
        if expected and batch != expected:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid input batch size - Expected: {expected}; Actual: {batch}",
            )
        limit = self.spec.max_batch
        if limit and batch > limit:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Invalid input batch size - Expected: at most {limit}; Actual: {batch}",
            )


def load_repository(models: Path | Sequence[ModelSpec]) -> dict[str, ServedModel]:
    """Each spec's newest version; a folder serves every model in it under its own name."""
    specs = ModelSpec.every_model(models) if isinstance(models, Path) else models
    if not all(spec.versioned for spec in specs):
        raise ValueError("the stand-in, as OVMS, serves numbered versions only")
    core = ov.Core()
    served = {}
    for spec in specs:
        path = newest_version(spec.path)
        if path is None:
            continue
        # f32 beside INT8, so the tests can compare its answers with plain OpenVINO on any CPU.
        compiled = core.compile_model(
            str(next(iter(sorted(path.glob("*.xml"))))),
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
        )
        served[spec.name] = ServedModel(
            spec=spec,
            version=int(path.name),
            compiled=compiled,
            request=compiled.create_infer_request(),
            lock=threading.Lock(),
            inputs={
                port.get_any_name(): (
                    np.dtype(port.get_element_type().to_dtype()),
                    port.get_partial_shape().rank.get_length(),
                )
                for port in compiled.inputs
            },
            outputs={
                port.get_any_name(): np.dtype(port.get_element_type().to_dtype())
                for port in compiled.outputs
            },
        )
    return served


class Repository:
    def __init__(self, models: dict[str, ServedModel]) -> None:
        self.models = models

    def get(self, name: str, version: int | None) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Model with requested name {name!r} is not found"
            )
        if version not in (None, 0, model.version):
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Model {name!r} has no version {version} loaded"
            )
        return model


def _abort_on_error(method):  # type: ignore[no-untyped-def]
    def wrapped(self, request, context):  # type: ignore[no-untyped-def]
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(error.code, str(error))

    return wrapped


def _kserve_version(text: str) -> int | None:
    return int(text) if text else None


class KServeServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    def ServerLive(self, request, context):  # type: ignore[no-untyped-def]
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):  # type: ignore[no-untyped-def]
        return service_pb2.ServerReadyResponse(ready=True)

    @_abort_on_error
    def ModelReady(self, request, context):  # type: ignore[no-untyped-def]
        self.repository.get(request.name, _kserve_version(request.version))
        return service_pb2.ModelReadyResponse(ready=True)

    @_abort_on_error
    def ModelMetadata(self, request, context):  # type: ignore[no-untyped-def]
        model = self.repository.get(request.name, _kserve_version(request.version))
        response = service_pb2.ModelMetadataResponse(
            name=model.name, versions=[str(model.version)], platform="OpenVINO"
        )
        if model.spec.tensor_metadata:
            for port in model.compiled.inputs:
                response.inputs.append(_kserve_tensor_metadata(model, port, is_input=True))
            for port in model.compiled.outputs:
                response.outputs.append(_kserve_tensor_metadata(model, port, is_input=False))
        return response

    @_abort_on_error
    def ModelInfer(self, request, context):  # type: ignore[no-untyped-def]
        model = self.repository.get(request.model_name, _kserve_version(request.model_version))
        arrays = {}
        for index, tensor in enumerate(request.inputs):
            dtype = np.dtype(triton_to_np_dtype(tensor.datatype) or np.void)
            shape = tuple(tensor.shape)
            if index < len(request.raw_input_contents):
                raw = request.raw_input_contents[index]
                if len(raw) != dtype.itemsize * int(np.prod(shape)):
                    raise ServingError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Invalid content size of {tensor.name} for shape {list(shape)}",
                    )
                arrays[tensor.name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
            else:
                values = tensor.contents.int64_contents or tensor.contents.int_contents
                arrays[tensor.name] = np.asarray(values, dtype=dtype).reshape(shape)
        results = model.infer(arrays)
        wanted = [item.name for item in request.outputs] or list(results)
        unknown = [name for name in wanted if name not in results]
        if unknown:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Unknown outputs: {unknown}")
        response = service_pb2.ModelInferResponse(
            model_name=model.name, model_version=str(model.version), id=request.id
        )
        for name in wanted:
            array = np.ascontiguousarray(results[name])
            tensor = service_pb2.ModelInferResponse.InferOutputTensor(
                name=name, datatype=np_to_triton_dtype(array.dtype), shape=list(array.shape)
            )
            if model.spec.typed_outputs:
                getattr(tensor.contents, _TYPED_CONTENTS[array.dtype.kind]).extend(array.ravel())
            else:
                response.raw_output_contents.append(array.tobytes())
            response.outputs.append(tensor)
        return response


_TYPED_CONTENTS = {"f": "fp32_contents", "i": "int64_contents"}  # the IRs' float32 and int64


def _kserve_tensor_metadata(
    model: ServedModel, port: ov.ConstOutput, *, is_input: bool
) -> service_pb2.ModelMetadataResponse.TensorMetadata:
    return service_pb2.ModelMetadataResponse.TensorMetadata(
        name=port.get_any_name(),
        datatype=np_to_triton_dtype(np.dtype(port.get_element_type().to_dtype())),
        shape=model.shape(port, is_input=is_input),
    )


class TfsPredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @_abort_on_error
    def Predict(self, request, context):  # type: ignore[no-untyped-def]
        spec = request.model_spec
        model = self.repository.get(
            spec.name, spec.version.value if spec.HasField("version") else None
        )
        arrays = {name: make_ndarray(tensor) for name, tensor in request.inputs.items()}
        results = model.infer(arrays)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        for name in request.output_filter or results:
            if name not in results:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Unknown output: {name}")
            response.outputs[name].CopyFrom(make_tensor_proto(np.ascontiguousarray(results[name])))
        return response

    @_abort_on_error
    def GetModelMetadata(self, request, context):  # type: ignore[no-untyped-def]
        spec = request.model_spec
        model = self.repository.get(
            spec.name, spec.version.value if spec.HasField("version") else None
        )
        signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        if model.spec.tensor_metadata:
            for port in model.compiled.inputs:
                info = _tfs_tensor_info(model, port, is_input=True)
                signature.inputs[port.get_any_name()].CopyFrom(info)
            for port in model.compiled.outputs:
                info = _tfs_tensor_info(model, port, is_input=False)
                signature.outputs[port.get_any_name()].CopyFrom(info)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def["serving_default"].CopyFrom(signature)
        packed = any_pb2.Any()
        packed.Pack(signatures)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].CopyFrom(packed)
        return response


def _tfs_tensor_info(
    model: ServedModel, port: ov.ConstOutput, *, is_input: bool
) -> meta_graph_pb2.TensorInfo:
    dtype = np.dtype(port.get_element_type().to_dtype())
    sizes = model.shape(port, is_input=is_input)
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in sizes]
    )
    return meta_graph_pb2.TensorInfo(
        name=port.get_any_name(), dtype=NP_TO_TENSOR_MAP[dtype.type].TensorDtype, tensor_shape=shape
    )


class TfsModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @_abort_on_error
    def GetModelStatus(self, request, context):  # type: ignore[no-untyped-def]
        spec = request.model_spec
        model = self.repository.get(
            spec.name, spec.version.value if spec.HasField("version") else None
        )
        status = get_model_status_pb2.ModelVersionStatus(
            version=model.version, state=get_model_status_pb2.ModelVersionStatus.State.AVAILABLE
        )
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[status])


class RestHealth(BaseHTTPRequestHandler):
    """OVMS's REST health paths; answers HTTP/1 only, as a REST port does."""

    repository: Repository
    _MODEL_READY = re.compile(r"^/v2/models/([^/]+)(?:/versions/(\d+))?/ready$")

    def do_GET(self) -> None:
        found = self.path in ("/v2/health/live", "/v2/health/ready")
        match = self._MODEL_READY.match(self.path)
        if match:
            try:
                version = int(match.group(2)) if match.group(2) else None
                self.repository.get(match.group(1), version)
                found = True
            except ServingError:
                found = False
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_rest(repository: Repository, port: int = 0) -> ThreadingHTTPServer:
    handler = type("Handler", (RestHealth,), {"repository": repository})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(
    models: Path | Sequence[ModelSpec], port: int = 0
) -> tuple[grpc.Server, int, ThreadingHTTPServer]:
    repository = Repository(load_repository(models))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(KServeServicer(repository), server)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        TfsPredictionServicer(repository), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(TfsModelServicer(repository), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound, serve_rest(repository)


def save_int32_model(directory: Path) -> None:
    """An IR taking int32 ids, for tests of a client meeting a model with other input dtypes."""
    import openvino.opset13 as ops

    params = [
        ops.parameter([-1, -1], ov.Type.i32, name=name)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    logits = ops.convert(params[0], "f32")
    start = ops.multiply(logits, np.float32(0.5))
    end = ops.multiply(logits, np.float32(0.25))
    start.output(0).set_names({"start_logits"})
    end.output(0).set_names({"end_logits"})
    directory.mkdir(parents=True)
    ov.save_model(ov.Model([start, end], params, "int32-qa"), directory / "openvino_model.xml")


class LoopbackServer:
    """A test server's process on 127.0.0.1: its gRPC port and an HTTP/1 one (REST)."""

    port: int
    rest_port: int
    process: subprocess.Popen | None  # type: ignore[type-arg]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rest_address(self) -> str:
        """Its HTTP/1 port: something that answers, but not gRPC."""
        return f"127.0.0.1:{self.rest_port}"

    def start(self) -> LoopbackServer:
        raise NotImplementedError

    def stop(self) -> None:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LoopbackServer:
        # A server already started (``start_server``) is not started twice: that would leave
        # the first process running with nothing to stop it.
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FixtureServer(LoopbackServer):
    """The fixture server in a real subprocess, so a test can stop it like a crashed server.

    ``models``: a folder whose every model is served under its own name, or a list of specs.
    """

    def __init__(self, models: Path | Sequence[ModelSpec], port: int = 0) -> None:
        self.models = models
        self.port = port
        self.rest_port = 0
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> FixtureServer:
        if isinstance(self.models, Path):
            models = ["--models-dir", str(self.models)]
        else:
            models = ["--models", json.dumps([spec.to_json() for spec in self.models])]
        self.process = subprocess.Popen(
            [sys.executable, __file__, *models, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            line = self.process.stdout.readline() if self.process.stdout else ""
        finally:
            timer.cancel()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fixture server did not start (got {line!r})")
        _, port, _, rest_port = line.split()
        self.port, self.rest_port = int(port), int(rest_port)
        return self

    def stop(self) -> None:
        super().stop()
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--models-dir", type=Path, help="serve every model in it")
    models.add_argument("--models", type=json.loads, help="a JSON list of ModelSpec objects")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(list(argv) if argv is not None else None)
    specs = args.models_dir or [ModelSpec.from_json(item) for item in args.models]
    server, port, rest = serve(specs, args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"PORT {port} REST {rest.server_address[1]}", flush=True)
    stopped.wait()
    rest.shutdown()
    server.stop(grace=2).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
