#!/usr/bin/env bash
# Install the qat chart on a real single-node cluster (kind or k3s), wait for training and the
# service, run `helm test`, then uninstall. Usage, from the repository root:
#
#   docs/real-cluster.sh kind [optimum|onnxruntime|ovms]     # needs docker and kind
#   docs/real-cluster.sh k3s  [optimum|onnxruntime|ovms]     # on a k3s node, with sudo
#
# This script has NOT been run by the project's CI or its developers: the machines it was
# written on have no container engine and no Kubernetes. The chart itself is rendered,
# validated and scanned in tests/chart; this is the remaining end-to-end check.
set -euo pipefail

cluster="${1:?usage: $0 kind|k3s [backend]}"
backend="${2:-optimum}"
release="${RELEASE:-qatchart}"
namespace="${NAMESPACE:-qatflow}"
tag="$(sed -n 's/^appVersion: *"\(.*\)"/\1/p' helm/qat/Chart.yaml)"
repo="$(pwd)"
export PATH="${repo}/.tools/bin:${repo}/.venv/bin:${PATH}"

[[ -x .tools/bin/helm ]] || helm/install-tools.sh

images=(training client)
case "${backend}" in
  optimum | onnxruntime) images+=("${backend}") ;;
  ovms) ;; # the official openvino/model_server image is pulled by the cluster
  *) echo "backend must be optimum, onnxruntime or ovms" >&2 && exit 2 ;;
esac

echo "==> building images (${images[*]}) with tag ${tag}"
for image in "${images[@]}"; do
  docker build -f "dockerfiles/${image}.Dockerfile" -t "qatflow-${image}:${tag}" .
done

values=(--namespace "${namespace}" --create-namespace --set "inference.backend=${backend}")
case "${cluster}" in
  kind)
    kind get clusters | grep -qx qatflow || kind create cluster --name qatflow --wait 120s
    kubectl config use-context kind-qatflow
    for image in "${images[@]}"; do
      kind load docker-image --name qatflow "qatflow-${image}:${tag}"
    done
    ;;
  k3s)
    for image in "${images[@]}"; do
      docker save "qatflow-${image}:${tag}" | sudo k3s ctr images import -
    done
    # k3s's local-path provisioner gives ReadWriteOnce volumes; hostPath would need
    # `sudo install -d -o 10001 -g 10001 DIR` and --set persistence.hostPath.path=DIR.
    ;;
  *) echo "cluster must be kind or k3s" >&2 && exit 2 ;;
esac

echo "==> helm install (training runs as a pre-install hook; follow it below)"
helm install "${release}" helm/qat "${values[@]}" --timeout 30m &
install_pid=$!
# The status helper follows the training Job's logs, then waits for the service.
qatflow status "${release}" --namespace "${namespace}" --timeout 1800 || true
wait "${install_pid}"

echo "==> helm test"
helm test "${release}" --namespace "${namespace}" --logs --timeout 5m

echo "==> training logs are still readable after the install"
kubectl --namespace "${namespace}" logs "job/$(kubectl --namespace "${namespace}" get job \
  -l "app.kubernetes.io/instance=${release},app.kubernetes.io/component=training" \
  -o jsonpath='{.items[0].metadata.name}')" | tail -n 5

echo "==> inference-only reinstall on the kept volume"
claim="$(kubectl --namespace "${namespace}" get pvc \
  -l "app.kubernetes.io/instance=${release}" -o jsonpath='{.items[0].metadata.name}')"
helm uninstall "${release}" --namespace "${namespace}" --wait
helm install "${release}" helm/qat "${values[@]}" --no-hooks --wait --timeout 10m \
  --set training.enabled=false --set "persistence.existingClaim=${claim}"
helm test "${release}" --namespace "${namespace}" --logs --timeout 5m

echo "==> uninstall"
helm uninstall "${release}" --namespace "${namespace}" --wait
kubectl --namespace "${namespace}" delete pvc "${claim}" # kept on uninstall by design
if [[ "${cluster}" == kind ]]; then kind delete cluster --name qatflow; fi
echo "==> done"
