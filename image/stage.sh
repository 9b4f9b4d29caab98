#!/bin/sh
# Copies a built checkout (SRC: dist/, bpf/build/, cni/build/, production node_modules/) into the
# image's layout under STAGE: /opt/clustermesh and the entrypoints in /usr/local/bin. Shared by the
# Dockerfile and image/build.sh so both images hold the same files.
#   sh image/stage.sh SRC STAGE [NODE_MODULES_DIR [HUBBLE_PROTO_ROOT]]
# HUBBLE_PROTO_ROOT (scripts/hubble-protos.sh prints it): Hubble's API, which the agent serves,
# copied to /opt/clustermesh/hubble-proto; without it the image's agents run without flows.
set -eu
src=$1
stage=$2
modules=${3:-$src/node_modules}
protos=${4:-}
app=$stage/opt/clustermesh
mkdir -p "$app/bpf/build" "$app/cni/build" "$stage/usr/local/bin"
cp "$src/package.json" "$app/"
# the programs and the shared layers; no tests, benchmarks or lab
(cd "$src" && find dist -type f -name '*.js' ! -name '*.test.js' ! -path 'dist/test/*' ! -path 'dist/bench/*') |
  while read -r f; do mkdir -p "$app/$(dirname "$f")" && cp "$src/$f" "$app/$f"; done
# the commit the build came from, for --version without a .git (scripts/stamp-build-info.mjs)
if [ -f "$src/dist/build-info.json" ]; then cp "$src/dist/build-info.json" "$app/dist/"; fi
cp "$src"/bpf/build/*.bpf.o "$app/bpf/build/"
cp "$src/cni/build/clustermesh-cni" "$app/cni/build/"
cp -a "$modules" "$app/node_modules"
if [ -n "$protos" ]; then
  for api in observer flow relay; do
    mkdir -p "$app/hubble-proto/$api" && cp "$protos/$api/$api.proto" "$app/hubble-proto/$api/"
  done
fi
rm -f "$app/node_modules/.bootstrap-lock-hash"
for program in agent:clustermesh-agent clustermesh-apiserver:clustermesh-apiserver cli:meshctl; do
  dir=${program%%:*}
  name=${program#*:}
  printf '#!/bin/sh\nexec /usr/local/bin/node /opt/clustermesh/dist/%s/main.js "$@"\n' "$dir" >"$stage/usr/local/bin/$name"
  chmod 755 "$stage/usr/local/bin/$name"
done
ln -sf /opt/clustermesh/cni/build/clustermesh-cni "$stage/usr/local/bin/clustermesh-cni"
