#!/usr/bin/env bash
# Prints the directory holding Hubble's .proto files (observer/, flow/, relay/) of the Cilium release
# the project pins (test/interop/cilium-v1.18/go.mod), downloading that module into the Go module
# cache first when it is missing. The files are never copied into the repository: the image build
# (image/stage.sh) copies them into the image, and the agent reads them there or from the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=test/interop/cilium-v1.18
version=$(awk '$1 == "github.com/cilium/cilium" { print $2; exit }' "$mod/go.mod")
root="$(go env GOMODCACHE)/github.com/cilium/cilium@$version/api/v1"
if [ ! -f "$root/observer/observer.proto" ]; then
	echo "hubble-protos: downloading github.com/cilium/cilium@$version (Hubble's API) into the Go module cache" >&2
	(cd "$mod" && GOWORK=off go mod download github.com/cilium/cilium) >&2
fi
[ -f "$root/observer/observer.proto" ] || { echo "hubble-protos: no observer.proto under $root" >&2; exit 1; }
echo "$root"
