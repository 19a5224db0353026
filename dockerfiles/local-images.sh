#!/usr/bin/env bash
# Build every image without registry access: the debootstrap base (local-base.sh) stands in for
# python:3.11-slim-bookworm, and torch comes from a PEP 503 index of local wheels served on
# loopback, which the builds reach with `docker build --network host`. PyPI is used as usual.
#   dockerfiles/local-images.sh [make arguments...]       (from the repository root)
#   TORCH_INDEX_DIR   where the index is kept (default .cache/torch-index)
#   TORCH_INDEX_PORT  loopback port it is served on while building (default 3141; fixed, so
#                     the build cache survives from one build to the next)
#   EXTRA_CA_CERTS_FILE  CAs the builds trust (default: the host's own additions,
#                     /usr/local/share/ca-certificates/*.crt, e.g. a TLS-inspecting proxy's)
#   PYTHON            the Python whose pip (and pip configuration) fetches the wheels
set -euo pipefail
cd "$(dirname "$0")/.."

base=${LOCAL_BASE_IMAGE:-qatflow-base:bookworm}
index=${TORCH_INDEX_DIR:-.cache/torch-index}
port=${TORCH_INDEX_PORT:-3141}
python=${PYTHON:-python3}
torch=$(grep -o -m 1 '"torch==[^"]*"' pyproject.toml | tr -d '"')

bash dockerfiles/local-base.sh "${base}"

# The index replaces PyPI for the torch step, so it holds torch's dependencies too. The CPU
# build: a local version label that only a CPU wheel index or wheel directory carries.
if [[ ! -f ${index}/.complete ]]; then
    echo "Collecting ${torch}+cpu and its dependencies into ${index}"
    rm -rf "${index}"
    "${python}" -m pip download --quiet --only-binary=:all: --dest "${index}/files" "${torch}+cpu"
    for wheel in "${index}"/files/*.whl; do
        file=${wheel##*/}
        project=$(tr 'A-Z_.' 'a-z--' <<<"${file%%-*}")
        mkdir -p "${index}/simple/${project}"
        ln -f "${wheel}" "${index}/simple/${project}/${file}"
    done
    touch "${index}/.complete"
fi

extra_ca=${EXTRA_CA_CERTS_FILE:-}
if [[ -z ${extra_ca} ]] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    extra_ca=.cache/extra-ca-certificates.pem
    mkdir -p .cache && cat /usr/local/share/ca-certificates/*.crt >"${extra_ca}"
fi

"${python}" -m http.server --bind 127.0.0.1 --directory "${index}" "${port}" >/dev/null 2>&1 &
server=$!
trap 'kill "${server}" 2>/dev/null || true' EXIT
url=http://127.0.0.1:${port}/simple
for ((waited = 0; waited < 20; waited++)); do
    if "${python}" -c "import urllib.request as u; u.urlopen('${url}/torch/', timeout=2)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "${server}" 2>/dev/null; then
        echo "The torch index could not be served on 127.0.0.1:${port} (set TORCH_INDEX_PORT)" >&2
        exit 1
    fi
    sleep 0.5
done
echo "Serving ${index} at ${url}"

make images PYTHON_IMAGE="${base}" TORCH_INDEX_URL="${url}" EXTRA_CA_CERTS_FILE="${extra_ca}" \
    DOCKER_BUILD_FLAGS="--network host" "$@"
