# syntax=docker/dockerfile:1
# ONNX Runtime (OpenVINO Execution Provider) inference service: serves the published INT8 QDQ
# ONNX model over HTTP on port 8080. No torch, no NNCF.
# Build from the repository root: docker build -f dockerfiles/onnxruntime.Dockerfile -t qatflow-onnxruntime .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
# onnxruntime-openvino bundles its own OpenVINO; plain onnxruntime beside it would shadow it.
RUN pip install --no-cache-dir "./[onnxruntime]" \
    && python -c "import onnxruntime as o, sys; sys.exit('OpenVINOExecutionProvider' not in o.get_available_providers())" \
    && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'nncf')))"

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 qatflow \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin qatflow
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QATFLOW_SERVE_BACKEND=onnxruntime \
    QATFLOW_SERVE_MODELS_DIR=/models \
    QATFLOW_SERVE_PORT=8080
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["python", "-m", "qatflow.serving"]
