# ONNX Runtime (OpenVINO Execution Provider) inference service: serves the published INT8 QDQ
# ONNX model over HTTP on port 8080. No torch, no NNCF.
# Build from the repository root: docker build -f dockerfiles/onnxruntime.Dockerfile -t qatflow-onnxruntime .
# Build arguments: PYTHON_IMAGE (the base), EXTRA_CA_CERTS (PEM text of CAs pip trusts besides
# the base's, e.g. a TLS-inspecting proxy's). `make images` passes them; see docs/docker.md.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRA_CA_CERTS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_CERT=/opt/build-ca-certificates.pem
RUN { cat /etc/ssl/certs/ca-certificates.crt; printf '%s\n' "${EXTRA_CA_CERTS}"; } > "${PIP_CERT}" \
    && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
# The dependencies in a layer of their own: a change to the code does not download them again.
# onnxruntime-openvino bundles its own OpenVINO; plain onnxruntime beside it would shadow it.
RUN mkdir services && pip install --no-cache-dir "./[onnxruntime]" \
    && python -c "import onnxruntime as o, sys; sys.exit('OpenVINOExecutionProvider' not in o.get_available_providers())"
COPY services ./services
COPY dockerfiles/check_installed.py ./
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && python check_installed.py --absent torch nncf

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
