# Client image: `qatflow ask` over HTTP (the two services) or gRPC (OpenVINO Model Server), plus
# `qatflow ovms-config` and `qatflow status`. No torch, no NNCF, no runtime.
# Build from the repository root: docker build -f dockerfiles/client.Dockerfile -t qatflow-client .
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
RUN mkdir services && pip install --no-cache-dir "./[client]"
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
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["qatflow", "ask"]
