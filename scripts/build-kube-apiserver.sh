#!/usr/bin/env bash
# Build a real kube-apiserver (v1.20.2) from Debian's `kubernetes` source
# package and cache it outside the repo. No registry ships a kube-apiserver
# binary and kind needs Docker, so this is how tests get a real API server.
# Prints the binary's path. Rebuilds only when the cached binary is missing.
set -euo pipefail

VERSION=v1.20.2
CACHE_DIR=${ENI_CACHE_DIR:-$HOME/.cache/eni-controller}
OUT=$CACHE_DIR/kube-apiserver-$VERSION/kube-apiserver

if [ -x "$OUT" ]; then
  echo "$OUT"
  exit 0
fi

log() { echo "[build-kube-apiserver] $*" >&2; }

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
log "installing build dependencies"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq golang-go rsync make etcd-server dpkg-dev \
  golang-github-modern-go-reflect2-dev debian-archive-keyring >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kube-apiserver-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# deb-src is not configured system-wide: point apt at a private sources dir
# that mirrors the system's deb entries as deb-src.
SRC=$WORK/apt
mkdir -p "$SRC/lists/partial"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$SRC/debian-src.sources"
else
  cat > "$SRC/debian-src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
APT_OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$SRC" -o "Dir::State::Lists=$SRC/lists")
log "fetching the kubernetes source package"
apt-get "${APT_OPTS[@]}" update -qq >&2
(cd "$WORK" && apt-get "${APT_OPTS[@]}" source -qq kubernetes >&2)
TREE=$(find "$WORK" -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
[ -n "$TREE" ] || { log "source tree not found"; exit 1; }

# The vendored reflect2 1.0.1 crashes under Go >= 1.18 on the first
# custom-resource create; Debian's packaged copy is fixed.
rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$TREE/vendor/github.com/modern-go/reflect2"
rm -f "$TREE/vendor/github.com/modern-go/reflect2/go.mod"

log "building kube-apiserver (about 5 minutes on 2 cores)"
(cd "$TREE" && KUBE_GIT_VERSION=$VERSION KUBE_GIT_TREE_STATE=clean make WHAT=cmd/kube-apiserver >&2)
mkdir -p "$(dirname "$OUT")"
cp "$TREE/_output/bin/kube-apiserver" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "cached at $OUT"
echo "$OUT"
