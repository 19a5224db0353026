#!/usr/bin/env bash
# Without registry access: a stand-in for python:3.11-slim-bookworm, made from the Debian mirror
# with debootstrap and imported into Docker. Debian 12's Python is 3.11; the headers are there
# because the training image compiles NNCF's C++ extension. Needs root and debootstrap.
#   dockerfiles/local-base.sh [IMAGE]   (default qatflow-base:bookworm; kept if it exists)
#   DEBIAN_MIRROR   the mirror to bootstrap from (default http://deb.debian.org/debian)
#   REBUILD=1       make it again even if IMAGE exists
set -euo pipefail

image=${1:-qatflow-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,python-is-python3,libpython3.11-dev,ca-certificates

if [[ -z ${REBUILD:-} ]] && docker image inspect "${image}" >/dev/null 2>&1; then
    echo "Base image ${image} exists (REBUILD=1 makes it again)"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
fi

rootfs=$(mktemp -d)
trap 'rm -rf "${rootfs}"' EXIT
echo "Bootstrapping Debian 12 (bookworm) from ${mirror} into ${rootfs}"
debootstrap --variant=minbase --include="${packages}" bookworm "${rootfs}" "${mirror}"

# What debian:bookworm-slim leaves out, for this root and for packages installed later.
cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
find "${rootfs}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "${rootfs}"/usr/share/{man,info,locale}/* "${rootfs}"/var/lib/apt/lists/* \
    "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/log/*
# debootstrap copies the host's; Docker provides its own at run time.
: >"${rootfs}/etc/resolv.conf"
: >"${rootfs}/etc/hostname"

tar --numeric-owner -C "${rootfs}" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap bookworm (${packages}) from ${mirror}" \
    - "${image}"
docker run --rm "${image}" python -c 'import sys, venv, ssl; print("Python", sys.version.split()[0])'
echo "Base image ${image}: $(docker image inspect -f '{{.Size}}' "${image}" | awk '{printf "%.0f MB", $1 / 1e6}')"
