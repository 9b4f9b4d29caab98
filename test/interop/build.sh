#!/usr/bin/env bash
# Builds Cilium's own programs at a pinned release, once, into a cache outside the repository:
#   clustermesh-apiserver   (Cilium's; `clustermesh-apiserver kvstoremesh` is KVStoreMesh)
#   cilium-interop-checker  (./cilium-vX.Y/checker: reads an etcd prefix with Cilium's decoders
#                            and validators and prints one JSON verdict per key)
#
# Usage: test/interop/build.sh [vX.Y ...]   (default: every test/interop/cilium-v*/ module)
# Prints, last, one line per release: "<release> <bin dir>".
#
# The cache key is the release plus a hash of the wrapper module (go.mod, go.sum, checker
# sources), so editing the checker rebuilds and an unchanged tree never does. A build goes to a
# temporary directory that is renamed into place only when complete: an interrupted build leaves
# no half cache behind. Cold builds take minutes on 2 cores; progress lines show the package
# count and a failure names its log.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${CLUSTERMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustermesh}"
mkdir -p "$cache_root/bin" "$cache_root/logs"

if [ "$#" -gt 0 ]; then
	releases=("$@")
else
	releases=()
	for d in "$here"/cilium-v*/; do releases+=("$(basename "$d" | sed 's/^cilium-//')"); done
fi

# go build -v prints each package as it is compiled: report the count every 30 s.
run_with_progress() {
	local label="$1" log="$2"
	shift 2
	"$@" >"$log" 2>&1 &
	local pid=$! start=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		if (((SECONDS - start) % 30 < 5)) && kill -0 "$pid" 2>/dev/null; then
			echo "interop-build: $label: $(wc -l <"$log") packages compiled, $((SECONDS - start)) s" >&2
		fi
	done
	if ! wait "$pid"; then
		echo "interop-build: $label FAILED after $((SECONDS - start)) s; log: $log" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	echo "interop-build: $label done in $((SECONDS - start)) s" >&2
}

results=()
for release in "${releases[@]}"; do
	mod="$here/cilium-$release"
	[ -f "$mod/go.mod" ] || {
		echo "interop-build: no wrapper module $mod/go.mod (known: $(ls -d "$here"/cilium-v* | xargs -n1 basename | tr '\n' ' '))" >&2
		exit 2
	}
	cilium_version="$(cd "$mod" && GOWORK=off go list -m -f '{{.Version}}' github.com/cilium/cilium)"
	key="$(cd "$mod" && cat go.mod go.sum $(find checker -name '*.go' | sort) | sha256sum | cut -c1-12)"
	out="$cache_root/bin/cilium-interop-$cilium_version-$key"
	if [ -x "$out/clustermesh-apiserver" ] && [ -x "$out/cilium-interop-checker" ]; then
		echo "interop-build: $cilium_version cached in $out" >&2
		results+=("$release $out")
		continue
	fi
	tmp="$(mktemp -d "$cache_root/bin/.tmp-cilium-interop-$cilium_version-XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	log="$cache_root/logs/cilium-interop-$cilium_version-$key.log"
	echo "interop-build: building Cilium $cilium_version programs into $out (log: $log)" >&2
	build_start=$SECONDS
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
	ldflags="-s -w -X github.com/cilium/cilium/pkg/version.ciliumVersion=${cilium_version#v}"
	(cd "$mod" && GOWORK=off go mod download) >"$log.download" 2>&1 || {
		echo "interop-build: module download FAILED; log: $log.download" >&2
		tail -n 20 "$log.download" >&2
		exit 1
	}
	(
		cd "$mod"
		# The checker first: it is smaller, and most of its packages are the apiserver's too.
		run_with_progress "$cilium_version cilium-interop-checker" "$log.checker" \
			env GOWORK=off nice -n 10 go build -v -ldflags="$ldflags" -o "$tmp/cilium-interop-checker" ./checker
		run_with_progress "$cilium_version clustermesh-apiserver" "$log" \
			env GOWORK=off nice -n 10 go build -v -ldflags="$ldflags" -o "$tmp/clustermesh-apiserver" \
			github.com/cilium/cilium/clustermesh-apiserver
	)
	rm -rf "$out"
	mv "$tmp" "$out"
	trap - EXIT
	echo "interop-build: $cilium_version built in $((SECONDS - build_start)) s" >&2
	results+=("$release $out")
done
printf '%s\n' "${results[@]}"
