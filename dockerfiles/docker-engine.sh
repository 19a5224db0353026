#!/usr/bin/env bash
# Make sure a Docker engine answers: start dockerd in the background if none does, and wait for
# it. Exits non-zero, saying why, when no engine can be started. The engine is left running.
#   DOCKERD_LOG      where dockerd logs (default /var/log/dockerd.log)
#   DOCKERD_TIMEOUT  seconds to wait for it to answer (default 60)
set -euo pipefail

log=${DOCKERD_LOG:-/var/log/dockerd.log}
timeout=${DOCKERD_TIMEOUT:-60}

engine_version() {
    docker version --format '{{.Server.Version}}' 2>/dev/null
}

if version=$(engine_version); then
    echo "Docker engine ${version} is running"
    exit 0
fi
if ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; then
    echo "No Docker engine answers and docker/dockerd are not installed (apt-get install docker.io)." >&2
    exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "No Docker engine answers, and only root can start dockerd: start it, or run as root." >&2
    exit 1
fi

# An engine that was killed leaves its pid files behind; if another process has since taken one
# of those pids, dockerd refuses to start, or waits for a containerd that is not there.
declare -A owners=(
    [/var/run/docker.pid]=dockerd
    [/var/run/docker/containerd/containerd.pid]=containerd
)
for pidfile in "${!owners[@]}"; do
    owner=$(cat "/proc/$(cat "${pidfile}" 2>/dev/null)/comm" 2>/dev/null || true)
    if [[ -f ${pidfile} && ${owner} != "${owners[${pidfile}]}" ]]; then
        echo "Removing the stale ${pidfile}"
        rm -f "${pidfile}"
    fi
done

echo "Starting dockerd (log: ${log})"
# Its own session: an interrupted make or test run must not take the engine down with it.
setsid dockerd >>"${log}" 2>&1 </dev/null &
pid=$!
for ((waited = 0; waited < timeout; waited++)); do
    if version=$(engine_version); then
        echo "Docker engine ${version} is running"
        exit 0
    fi
    if ! kill -0 "${pid}" 2>/dev/null; then
        break
    fi
    sleep 1
done
echo "dockerd did not answer within ${timeout}s. Last lines of ${log}:" >&2
tail -n 20 "${log}" >&2
exit 1
