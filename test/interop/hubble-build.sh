#!/usr/bin/env bash
# Builds Cilium's hubble CLI from the pinned Cilium module (./hubble-v1.18: the interop pin, with
# the CLI's dependencies in go.sum), once, into a cache outside the repository:
#   ${CLUSTERMESH_CACHE:-~/.cache/clustermesh}/bin/hubble-<cilium version>-<key>/hubble
# <key> hashes the wrapper's go.mod and go.sum. Write-then-rename; progress lines every 30 s; a
# failure names its log. Prints, last, the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/hubble-v1.18"
cache_root="${CLUSTERMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustermesh}"
mkdir -p "$cache_root/bin" "$cache_root/logs"

version="$(cd "$mod" && GOWORK=off go list -m -f '{{.Version}}' github.com/cilium/cilium)"
key="$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)"
out="$cache_root/bin/hubble-$version-$key"
if [ -x "$out/hubble" ]; then
	echo "hubble-build: $version cached in $out" >&2
	echo "$out/hubble"
	exit 0
fi
tmp="$(mktemp -d "$cache_root/bin/.tmp-hubble-$version-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log="$cache_root/logs/hubble-$version-$key.log"
echo "hubble-build: building the hubble CLI of Cilium $version into $out (log: $log)" >&2
start=$SECONDS
(cd "$mod" && GOWORK=off go mod download github.com/cilium/cilium) >"$log.download" 2>&1 || {
	echo "hubble-build: module download FAILED; log: $log.download" >&2
	tail -n 20 "$log.download" >&2
	exit 1
}
(
	cd "$mod"
	GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath" nice -n 10 go build -v -ldflags="-s -w" \
		-o "$tmp/hubble" github.com/cilium/cilium/hubble
) >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 5
	if (((SECONDS - start) % 30 < 5)) && kill -0 "$pid" 2>/dev/null; then
		echo "hubble-build: $(wc -l <"$log") packages compiled, $((SECONDS - start)) s" >&2
	fi
done
if ! wait "$pid"; then
	echo "hubble-build: FAILED after $((SECONDS - start)) s; log: $log" >&2
	tail -n 20 "$log" >&2
	exit 1
fi
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "hubble-build: built in $((SECONDS - start)) s" >&2
echo "$out/hubble"
