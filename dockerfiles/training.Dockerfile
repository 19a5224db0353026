# syntax=docker/dockerfile:1
# Training image: fine-tunes, QAT-quantizes with NNCF and publishes an INT8 model to /models.
# Build from the repository root: docker build -f dockerfiles/training.Dockerfile -t qatflow-training .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU wheel first, from PyTorch's CPU index: the default index pulls GiBs of CUDA libraries.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
# Only the training extra; torchvision must not come along (it breaks the CPU torch wheel).
RUN pip install --no-cache-dir "./[training]" \
    && python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is not None)"

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
