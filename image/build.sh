#!/usr/bin/env bash
# npm run image: builds the clustermesh image without a Docker daemon, as one archive that both
# `docker load` and `kind load image-archive` take (an OCI image layout with Docker's manifest.json
# beside it, as `docker save` writes since Docker 25).
#   bash image/build.sh [--output FILE]      (default dist/image/clustermesh-<version>.tar)
# The Debian base (mmdebstrap, image/packages.txt) and the production node_modules are cached under
# ${CLUSTERMESH_CACHE:-~/.cache/clustermesh}/image, keyed by their inputs; the image's Node is this
# machine's (Node >= 20, its libraries are in the Debian base).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[image] %s\n' "$*" >&2; }

output=""
while (($#)); do
  case $1 in
  --output) output=${2:?--output needs a file}; shift 2 ;;
  -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) log "unknown argument $1 (see --help)"; exit 2 ;;
  esac
done

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (mmdebstrap and umoci unpack/repack keep file ownership)"
  exit 1
fi
version=$(node -p 'require("./package.json").version')
image_name=${CLUSTERMESH_IMAGE:-docker.io/clustermesh/clustermesh:$version}
output=${output:-dist/image/clustermesh-$version.tar}
for built in dist/agent/main.js dist/cli/main.js dist/clustermesh-apiserver/main.js cni/build/clustermesh-cni bpf/build/from_pod.bpf.o; do
  [[ -e $built ]] || { log "$built is missing: run npm run bootstrap first"; exit 1; }
done

# shellcheck source=image/layers.sh
. image/layers.sh
work=$(mktemp -d /tmp/clustermesh-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS

# 1. the Debian base, once per package list; 2. production node_modules, once per lockfile
ensure_base_tar
ensure_prod_modules

# 3. the image: base layer, then the application layer
log "assembling $image_name"
layout=$work/layout
bundle=$work/bundle
tag=$version
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
tar -xf "$base" -C "$bundle/rootfs" --numeric-owner --exclude='./dev/*'
umoci repack --refresh-bundle --image "$layout:$tag" --history.created_by "mmdebstrap bookworm minbase + image/packages.txt" "$bundle"
node scripts/stamp-build-info.mjs
sh image/stage.sh "$PWD" "$bundle/rootfs" "$modules" "$(bash scripts/hubble-protos.sh)"
install -m 755 "$(readlink -f "$(command -v node)")" "$bundle/rootfs/usr/local/bin/node"
umoci repack --image "$layout:$tag" --history.created_by "clustermesh $version: /opt/clustermesh + entrypoints + node" "$bundle"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
umoci config --image "$layout:$tag" --os linux --architecture amd64 \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd meshctl --config.cmd --help \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.revision=$commit" \
  --config.label "org.opencontainers.image.source=https://github.com/clustermesh/clustermesh"
umoci gc --layout "$layout"

# 4. name it for containerd (kind) and add Docker's manifest.json for docker load
node image/docker-manifest.mjs "$layout" "$tag" "$image_name"
mkdir -p "$(dirname "$output")"
tar -cf "$output.tmp" -C "$layout" .
mv "$output.tmp" "$output"
log "wrote $output ($(du -h "$output" | cut -f1), $((SECONDS - started)) s): docker load -i $output, or kind load image-archive $output"
