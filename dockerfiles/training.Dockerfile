# Training image: fine-tunes, QAT-quantizes with NNCF and publishes an INT8 model to /models.
# Build from the repository root: docker build -f dockerfiles/training.Dockerfile -t qatflow-training .
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
# The CPU wheel first, from the CPU index: the default index's torch pulls GiBs of CUDA libraries.
RUN pip install --no-cache-dir torch==2.13.0 --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md ./
# The dependencies in a layer of their own: a change to the code does not download them again.
# Only the training extra; torchvision must not come along (it breaks the CPU torch wheel).
RUN mkdir services && pip install --no-cache-dir "./[training]"
COPY services ./services
COPY dockerfiles/check_installed.py ./
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && python check_installed.py --absent torchvision

FROM ${PYTHON_IMAGE} AS runtime
# g++ stays in the image: torch re-checks the prebuilt NNCF extension with the compiler at start.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 qatflow \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin qatflow \
    && install -d -o 10001 -g 10001 /models /opt/torch_extensions
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TORCH_EXTENSIONS_DIR=/opt/torch_extensions \
    NNCF_EXTENSION_LOAD_TIMEOUT=0 \
    QATFLOW_TRAIN_OUTPUT_DIR=/models
USER 10001:10001
# Compile NNCF's C++ extension now, as the runtime user, so no Job waits ~90 s for it.
RUN python -m qatflow.training.nncf_extension
WORKDIR /models
VOLUME ["/models"]
ENTRYPOINT ["python", "-m", "qatflow.training"]
