"""The HTTP API, the same whichever backend runs the model.

``POST /v1/question-answering`` answers and ``POST /v1/text-classification`` classifies (the
endpoint of the loaded model's task; the other one answers 404); ``/v2/health/*`` and
``/v2/models/{name}`` follow the Open Inference Protocol paths; ``/metrics`` serves Prometheus
metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import qatflow
from qatflow.core.classification import Prediction
from qatflow.core.qa import Answer, QuestionTooLongError
from qatflow.serving.backends import create_backend
from qatflow.serving.backends.base import (
    QUESTION_ANSWERING,
    TEXT_CLASSIFICATION,
    ModelBackend,
    Question,
    Text,
    TextPairError,
    WrongTaskError,
)
from qatflow.serving.errors import (
    BadRequestError,
    InvalidInputError,
    ModelNotFoundError,
    ModelNotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    ServingError,
)
from qatflow.serving.metrics import ServiceMetrics
from qatflow.serving.schemas import (
    QUESTION_ANSWERING_ADAPTER,
    QUESTION_ANSWERING_FORM,
    TEXT_CLASSIFICATION_ADAPTER,
    TEXT_CLASSIFICATION_FORM,
    AnswerOutput,
    AnswersOutput,
    ErrorOutput,
    LabelOutput,
    LabelsOutput,
    ModelMetadata,
    QuestionAnsweringBatchInput,
    QuestionAnsweringBatchOutput,
    QuestionAnsweringInput,
    RequestForm,
    TextClassificationBatchInput,
    TextClassificationBatchOutput,
    parse_request,
)
from qatflow.serving.settings import ServeSettings
from qatflow.serving.watcher import ModelWatcher

log = logging.getLogger("qatflow.serving")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOutput} for code in (400, 404, 413, 422, 503)
}
# task -> the endpoint that serves it
ENDPOINTS = {
    QUESTION_ANSWERING: "/v1/question-answering",
    TEXT_CLASSIFICATION: "/v1/text-classification",
}


def create_app(
    settings: ServeSettings,
    backend_factory: Callable[[], ModelBackend] | None = None,
) -> FastAPI:
    metrics = ServiceMetrics()
    watcher = ModelWatcher(
        settings, backend_factory or (lambda: create_backend(settings)), metrics, settings.backend
    )
    slots = asyncio.Semaphore(settings.max_concurrency)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watcher.run(), name="model-watcher")
        yield
        # uvicorn gets here only after in-flight requests finished (or the drain timed out).
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if watcher.current is not None:
            watcher.current.unload()
            log.info("model unloaded, shutting down")

    app = FastAPI(
        title="qatflow inference",
        version=qatflow.__version__,
        description=(
            "Extractive question answering or text classification with an INT8 model on "
            "OpenVINO; a service serves one model, so one of the two task endpoints."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.watcher = watcher
    app.state.metrics = metrics

    @app.exception_handler(ServingError)
    async def serving_error(_: Request, error: ServingError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        # A bug, not a client mistake: the trace goes to the log (uvicorn prints it), not the reply.
        log.error("%s %s failed: %r", request.method, request.url.path, error)
        return JSONResponse({"error": "internal error; see the service log"}, status_code=500)

    @app.post(
        "/v1/question-answering",
        summary="Answer questions about contexts",
        response_model=AnswerOutput | AnswersOutput | QuestionAnsweringBatchOutput,
        responses=_ERRORS,
        openapi_extra=_json_body("QuestionAnsweringRequest"),
    )
    async def question_answering(request: Request) -> Response:
        """One ``{question, context}`` object, or ``{"inputs": [...]}`` for a batch."""
        return await serve_request(request, QUESTION_ANSWERING, QUESTION_ANSWERING_FORM)

    @app.post(
        "/v1/text-classification",
        summary="Classify texts or text pairs",
        response_model=LabelOutput | LabelsOutput | TextClassificationBatchOutput,
        responses=_ERRORS,
        openapi_extra=_json_body("TextClassificationRequest"),
    )
    async def text_classification(request: Request) -> Response:
        """One ``{text, text_pair?}`` object, or ``{"inputs": [...]}`` for a batch."""
        return await serve_request(request, TEXT_CLASSIFICATION, TEXT_CLASSIFICATION_FORM)

    async def serve_request(request: Request, task: str, form: RequestForm) -> Response:
        """One request to the endpoint of ``task``: validated, inferred, counted in the metrics."""
        backend = watcher.current
        labels = (watcher.model_name, settings.backend)
        started = time.perf_counter()
        try:
            if backend is not None and backend.task not in (None, task):
                raise _wrong_task(backend.task, task)
            parsed = parse_request(
                await read_body(request, settings.max_body_bytes), settings.max_batch_size, form
            )
            if backend is None or backend.version is None:
                raise ModelNotReadyError("no model loaded yet; retry when /v2/health/ready says so")
            labels = (backend.version.name, settings.backend)
            batch = isinstance(parsed, QuestionAnsweringBatchInput | TextClassificationBatchInput)
            inputs = parsed.inputs if batch else [parsed]
            replies = await infer(backend, inputs, labels)
        except Exception as error:
            code = error.status_code if isinstance(error, ServingError) else 500
            metrics.requests.labels(*labels, str(code)).inc()
            metrics.errors.labels(*labels, str(code), type(error).__name__).inc()
            raise
        metrics.request_seconds.labels(*labels).observe(time.perf_counter() - started)
        metrics.requests.labels(*labels, "200").inc()
        counted = metrics.questions if task == QUESTION_ANSWERING else metrics.texts
        counted.labels(*labels).inc(len(inputs))
        return JSONResponse({"outputs": replies} if batch else replies[0])

    async def infer(
        backend: ModelBackend, inputs: Sequence[Any], labels: tuple[str, str]
    ) -> list[dict[str, Any]]:
        # Refuse at once rather than queue without bound; the client (or its balancer) retries.
        if slots.locked():
            raise OverloadedError(
                f"all {settings.max_concurrency} inference slots are busy; retry shortly"
            )
        async with slots:
            metrics.in_flight.labels(*labels).inc()
            started = time.perf_counter()
            try:
                return await run_in_threadpool(_run, backend, inputs)
            except (QuestionTooLongError, TextPairError) as error:
                raise InvalidInputError(str(error)) from None
            except WrongTaskError as error:  # a new version of the other task loaded meanwhile
                raise _wrong_task(error.served, error.asked) from None
            finally:
                metrics.inference_seconds.labels(*labels).observe(time.perf_counter() - started)
                metrics.in_flight.labels(*labels).dec()

    @app.get("/v2/health/live", summary="Liveness: the process answers")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get(
        "/v2/health/ready",
        summary="Readiness: a model is loaded",
        responses={503: {"model": ErrorOutput}},
    )
    async def ready() -> dict[str, bool]:
        if watcher.current is None:
            raise ModelNotReadyError("no model loaded yet")
        return {"ready": True}

    @app.get("/v2/models/{name}", summary="Metadata of the served model", responses=_ERRORS)
    async def model_metadata(name: str) -> ModelMetadata:
        backend = watcher.current
        if backend is None or backend.version is None:
            if name == (settings.model_name or name):
                raise ModelNotReadyError(f"model {name!r} is not loaded yet")
            raise ModelNotFoundError(f"this service serves {settings.model_name!r}, not {name!r}")
        version = backend.version
        if name != version.name:
            raise ModelNotFoundError(f"this service serves {version.name!r}, not {name!r}")
        manifest = version.manifest
        return ModelMetadata(
            name=version.name,
            versions=[str(version.version)],
            version=version.version,
            platform=settings.backend,
            backend=settings.backend,
            task=version.task,
            inference_precision=backend.inference_precision,
            labels=backend.labels or None,
            inputs=_tensors(manifest.get("inputs", []), "INT64"),
            outputs=_tensors(manifest.get("outputs", []), "FP32", len(backend.labels)),
            manifest={
                key: manifest[key]
                for key in (
                    "source_model",
                    "precision",
                    "max_seq_length",
                    "doc_stride",
                    "text_pair",
                    "created",
                    "libraries",
                )
                if key in manifest
            },
        )

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` (before parsing)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequestError(f"invalid Content-Length header: {declared!r}")
        if int(declared) > limit:
            raise PayloadTooLargeError(
                f"body of {declared} bytes exceeds the limit of {limit} bytes"
            )
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _run(backend: ModelBackend, inputs: Sequence[Any]) -> list[dict[str, Any]]:
    """The reply of each input, computed in a worker thread."""
    if inputs and isinstance(inputs[0], QuestionAnsweringInput):
        questions = [Question(i.question, i.context, i.top_k, i.max_answer_len) for i in inputs]
        answers = backend.answer(questions)
        return [
            _answer_reply(item.top_k, found) for item, found in zip(inputs, answers, strict=True)
        ]
    texts = [Text(item.text, item.text_pair, item.top_k) for item in inputs]
    predictions = backend.classify(texts)
    return [
        _label_reply(item.top_k, found) for item, found in zip(inputs, predictions, strict=True)
    ]


def _answer_reply(top_k: int, answers: Sequence[Answer]) -> dict[str, Any]:
    if top_k == 1:
        return answers[0].as_dict()
    return {"answers": [answer.as_dict() for answer in answers]}


def _label_reply(top_k: int, predictions: Sequence[Prediction]) -> dict[str, Any]:
    if top_k == 1:
        return predictions[0].as_dict()
    return {"labels": [prediction.as_dict() for prediction in predictions]}


def _wrong_task(served: str | None, asked: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"this service serves a {served} model; use {ENDPOINTS.get(served or '', 'its endpoint')} "
        f"(not {ENDPOINTS[asked]})"
    )


def _json_body(schema: str) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that parses its body itself (see ``_openapi``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _tensors(names: Sequence[str], datatype: str, classes: int = 0) -> list[dict[str, Any]]:
    # A classifier's logits have one column per label; every other tensor is [batch, sequence].
    return [
        {
            "name": name,
            "datatype": datatype,
            "shape": [-1, classes] if name == "logits" and classes else [-1, -1],
        }
        for name in names
    ]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema plus the request body, which the handler parses itself."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        body = QUESTION_ANSWERING_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["QuestionAnsweringRequest"] = body
        body = TEXT_CLASSIFICATION_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components["TextClassificationRequest"] = body
        app.openapi_schema = schema
    return app.openapi_schema
