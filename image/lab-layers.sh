#!/usr/bin/env bash
# The clustermesh image for the lab's nodes, without packing it: the same two layers image/build.sh
# packs (the Debian base of image/packages.txt; this checkout's build staged by image/stage.sh with
# Node), unpacked under ${CLUSTERMESH_CACHE:-~/.cache/clustermesh}/image and keyed by their inputs,
# so a rebuilt checkout gets a new application layer and an unchanged one costs nothing.
#   bash image/lab-layers.sh        prints {"layers":[app, base],"env":{"PATH":…}} on stdout
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[image] %s\n' "$*" >&2; }
[[ $(id -u) -eq 0 ]] || { log "must run as root (the layers keep file ownership)"; exit 1; }
for built in dist/agent/main.js dist/cli/main.js dist/clustermesh-apiserver/main.js cni/build/clustermesh-cni bpf/build/from_pod.bpf.o; do
  [[ -e $built ]] || { log "$built is missing: run npm run bootstrap first"; exit 1; }
done
# shellcheck source=image/layers.sh
. image/layers.sh
# one build at a time: labs brought up together share the cache
exec 9>"$image_cache/.lab-layers.lock"
flock 9
ensure_base_tar
ensure_prod_modules

rootfs=${base%.tar}.rootfs
if [[ ! -d $rootfs ]]; then
  log "unpacking the Debian base layer"
  rm -rf "$rootfs.tmp" && mkdir -p "$rootfs.tmp"
  tar -xf "$base" -C "$rootfs.tmp" --numeric-owner --exclude='./dev/*'
  mv "$rootfs.tmp" "$rootfs"
fi

node_bin=$(readlink -f "$(command -v node)")
protos=$(bash scripts/hubble-protos.sh)
app_key=$(
  {
    find dist -type f -name '*.js' ! -name '*.test.js' ! -path 'dist/test/*' ! -path 'dist/bench/*' | sort | xargs sha256sum
    sha256sum package.json dist/build-info.json bpf/build/*.bpf.o cni/build/clustermesh-cni image/stage.sh 2>/dev/null || true
    echo "$modules $protos"
    stat -c '%n %s %Y' "$node_bin"
  } | sha256sum | cut -c1-16
)
app=$image_cache/lab-app-$app_key
if [[ ! -d $app ]]; then
  log "staging this checkout's build as the application layer"
  tmp=$(mktemp -d "$image_cache/lab-app.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  sh image/stage.sh "$PWD" "$tmp" "$modules" "$protos"
  install -m 755 "$node_bin" "$tmp/usr/local/bin/node"
  chmod 755 "$tmp"
  mv "$tmp" "$app"
  # earlier checkouts' layers no lab uses any more (a lab records its layers in its images.json)
  for old in "$image_cache"/lab-app-*; do
    [[ $old == "$app" ]] && continue
    grep -qsF "\"$old\"" "${MESH_LAB_STATE_ROOT:-/run/clustermesh-lab}"/*/images.json || rm -rf "$old"
  done
fi
printf '{"layers":["%s","%s"],"env":{"PATH":"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}\n' "$app" "$rootfs"
