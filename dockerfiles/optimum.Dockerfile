# Optimum-Intel inference service: serves the published INT8 OpenVINO IR over HTTP on port 8080.
# Build from the repository root: docker build -f dockerfiles/optimum.Dockerfile -t qatflow-optimum .
# Build arguments: PYTHON_IMAGE (the base), TORCH_INDEX_URL (a wheel index with the CPU torch),
# EXTRA_CA_CERTS (PEM text of CAs pip trusts besides the base's, e.g. a TLS-inspecting proxy's).
# `make images` passes them; see docs/docker.md.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRA_CA_CERTS=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_CERT=/opt/build-ca-certificates.pem
RUN { cat /etc/ssl/certs/ca-certificates.crt; printf '%s\n' "${EXTRA_CA_CERTS}"; } > "${PIP_CERT}" \
    && python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# optimum-intel imports torch at module load, so the CPU wheel first, from the CPU index: the
# default index's torch pulls GiBs of CUDA libraries.
RUN pip install --no-cache-dir torch==2.13.0 --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md ./
# The dependencies in a layer of their own: a change to the code does not download them again.
# The extra pins torch, so pip keeps the CPU wheel and picks the torchvision made for it.
# optimum-intel declares nncf and torchvision but serving an IR needs neither: drop them.
RUN mkdir services && pip install --no-cache-dir "./[optimum]" \
    && pip uninstall -y torchvision nncf \
    && python -c "from optimum.intel import OVModelForQuestionAnswering"
COPY services ./services
COPY dockerfiles/check_installed.py ./
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && python check_installed.py --absent torchvision nncf

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
