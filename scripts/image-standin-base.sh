#!/usr/bin/env bash
# Make a stand-in for the Dockerfile's base image and import it into podman.
#
# Where no container registry can be pulled (the project's CI machines reach
# only PyPI, Debian and npm), the image test builds the Dockerfile on a Debian
# bookworm root filesystem made by debootstrap, with Debian's python3 (3.11, the
# same minor as the pinned python:3.11-slim-bookworm) as `python`. It is passed
# to the build as PYTHON_IMAGE: the Dockerfile's default, pinned by digest,
# stays the one release builds use. The rootfs tarball is cached outside the
# repo; the podman image is imported only when missing. Prints the image name.
set -euo pipefail

IMAGE=${STANDIN_IMAGE:-localhost/eni-controller-standin-base:bookworm}
CACHE_DIR=${ENI_CACHE_DIR:-$HOME/.cache/eni-controller}
TARBALL=$CACHE_DIR/standin-base/bookworm-python3.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PODMAN=${PODMAN:-podman}

log() { echo "[image-standin-base] $*" >&2; }

if "$PODMAN" image exists "$IMAGE"; then
  echo "$IMAGE"
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "debootstrap bookworm into $work/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/rootfs" "$MIRROR" >&2
  ln -sf python3 "$work/rootfs/usr/bin/python"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  mkdir -p "$(dirname "$TARBALL")"
  tar -C "$work/rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi

log "importing $TARBALL as $IMAGE"
"$PODMAN" import --change 'CMD ["python3"]' "$TARBALL" "$IMAGE" >/dev/null
echo "$IMAGE"
