# syntax=docker/dockerfile:1
# Optimum-Intel inference service: serves the published INT8 OpenVINO IR over HTTP on port 8080.
# Build from the repository root: docker build -f dockerfiles/optimum.Dockerfile -t qatflow-optimum .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# optimum-intel imports torch at module load, so the CPU wheel is needed (not the CUDA one).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
# optimum-intel declares nncf and torchvision but serving an IR needs neither: drop them.
RUN pip install --no-cache-dir "./[optimum]" \
    && pip uninstall -y torchvision nncf \
    && python -c "from optimum.intel import OVModelForQuestionAnswering" \
    && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torchvision', 'nncf')))"

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --gid 10001 qatflow \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin qatflow
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QATFLOW_SERVE_BACKEND=optimum \
    QATFLOW_SERVE_MODELS_DIR=/models \
    QATFLOW_SERVE_PORT=8080
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["python", "-m", "qatflow.serving"]
