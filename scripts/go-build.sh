#!/usr/bin/env bash
# Builds pinned third-party programs from the Go module proxy, once, into a cache outside the
# repository. Each target is a wrapper Go module under toolchain/<target>/ (see toolchain/README.md).
#
# Usage: scripts/go-build.sh <target> [<target> ...]      targets: kubernetes etcd coredns kubernetes-e2e promlint
#        scripts/go-build.sh --list                        prints the targets
# Prints, last, one line per target on stdout: the directory holding its binaries.
# Progress, timings and errors go to stderr.
#
# Cache: ${CLUSTERMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustermesh}/bin/<target>-<release>-<key>/
#   <key> is a hash of the wrapper's go.mod and go.sum (and its own packages' .go files, if any): a different pinned release (or any other
#   pinned dependency) gets a different directory, so nothing built from another pin is ever
#   used. The Go toolchain version is NOT part of the key: the sources are fixed by go.sum, a Go
#   patch release does not change what the binaries do for our tests, and rebuilding the
#   Kubernetes control plane costs many CPU-minutes (the Go version used is in BUILD-INFO).
# A build goes into a temporary directory beside the final one and is renamed into place only
# when every binary of the target is built: an interrupted build leaves nothing that is used.
# A lock per target makes a concurrent second call wait for the first instead of building twice.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${CLUSTERMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clustermesh}"

log() { echo "go-build: $*" >&2; }

# target -> "<module whose version names the release> <binary>=<package> ..."
target_spec() {
	case "$1" in
	kubernetes)
		echo "k8s.io/kubernetes" \
			"kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver" \
			"kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager" \
			"kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
		;;
	# e2e.test is a test binary (`go test -c` of the wrapper's own e2e package: only the suites
	# the lab runs); agnhost is the e2e tests' Swiss-army image program, run as the lab's agnhost image.
	kubernetes-e2e)
		echo "k8s.io/kubernetes" \
			"e2e.test=clustermesh.local/toolchain/kubernetes-e2e/e2e" \
			"agnhost=k8s.io/kubernetes/test/images/agnhost"
		;;
	etcd) echo "go.etcd.io/etcd/server/v3" "etcd=go.etcd.io/etcd/server/v3" ;;
	coredns) echo "github.com/coredns/coredns" "coredns=github.com/coredns/coredns" ;;
	# the tests' check of /metrics with Prometheus' parser and promlint (the wrapper's own command)
	promlint) echo "github.com/prometheus/client_golang" "promlint=clustermesh.local/toolchain/promlint/cmd/promlint" ;;
	*) return 1 ;;
	esac
}
all_targets="kubernetes etcd coredns kubernetes-e2e promlint"

# The release's version stamp, as upstream's build sets it (hack/lib/version.sh:
# https://github.com/kubernetes/kubernetes/blob/v1.33.0/hack/lib/version.sh#L151). gitCommit stays
# empty: the module proxy serves the tagged tree without its commit id; the tree is the release's,
# verified by go.sum, hence gitTreeState=clean.
target_ldflags() {
	local target="$1" release="$2"
	case "$target" in
	kubernetes | kubernetes-e2e)
		local major minor flags="" pkg
		major="${release#v}"
		major="${major%%.*}"
		minor="${release#v*.}"
		minor="${minor%%.*}"
		for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
			flags+=" -X $pkg.gitVersion=$release -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
			flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		done
		echo "$flags"
		;;
	*) echo "" ;;
	esac
}

# Reads `require <module> <version>` from a go.mod (single line or inside a require block).
module_version() {
	awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}

# Fails with what to install when Go is missing or older than the module's `go` line.
check_go() {
	local gomod="$1" need have
	need="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
	if ! command -v go >/dev/null 2>&1; then
		log "Go is not installed (or not on PATH). ${gomod#"$repo"/} needs Go >= $need:"
		log "  install it from https://go.dev/dl/ (e.g. go$need.linux-amd64.tar.gz into /usr/local/go) and add /usr/local/go/bin to PATH."
		exit 3
	fi
	have="$(GOTOOLCHAIN=local go env GOVERSION)"
	have="${have#go}"
	have="${have%%[-+ ]*}"
	if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
		log "Go $have is too old: ${gomod#"$repo"/} needs Go >= $need."
		log "  install Go $need or newer from https://go.dev/dl/ (this script never downloads a toolchain: GOTOOLCHAIN=local)."
		exit 3
	fi
}

# Runs one `go build -v`, printing a progress line every 30 s (packages compiled so far).
build_one() {
	local label="$1" logfile="$2"
	shift 2
	local start=$SECONDS
	"$@" >"$logfile" 2>&1 &
	local pid=$! last=$SECONDS
	# Interrupted (Ctrl-C, SIGTERM): stop the build too; the EXIT trap removes its directory.
	trap "kill $pid 2>/dev/null; exit 130" INT TERM HUP
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		if ((SECONDS - last >= 30)) && kill -0 "$pid" 2>/dev/null; then
			last=$SECONDS
			log "$label: $((SECONDS - start)) s, $(grep -vc '^#' "$logfile" || true) packages compiled"
		fi
	done
	if ! wait "$pid"; then
		log "$label FAILED after $((SECONDS - start)) s; log: $logfile"
		tail -n 25 "$logfile" | sed 's/^/  | /' >&2
		return 1
	fi
	log "$label: built in $((SECONDS - start)) s"
}

build_target() {
	local target="$1" spec module pairs mod gomod release key name out
	spec="$(target_spec "$target")" || {
		log "unknown target '$target' (known: $all_targets)"
		exit 2
	}
	read -r module pairs <<<"$spec"
	mod="$repo/toolchain/$target"
	gomod="$mod/go.mod"
	release="$(module_version "$gomod" "$module")"
	[ -n "$release" ] || {
		log "${gomod#"$repo"/} has no 'require $module vX' line"
		exit 2
	}
	# the wrapper's own packages (e.g. kubernetes-e2e's e2e/) are sources of the build too; tools.go
	# only names packages, so it stays out (and the existing targets keep their keys)
	local own_sources
	own_sources="$(find "$mod" -mindepth 2 -name '*.go' | LC_ALL=C sort)"
	# shellcheck disable=SC2086 # one path per line, no spaces in the repository's paths
	key="$(cat "$gomod" "$mod/go.sum" $own_sources | sha256sum | cut -c1-12)"
	name="$target-$release-$key"
	out="$cache_root/bin/$name"
	# Fast path (no Go, no lock): a complete build was renamed into place with its BUILD-INFO.
	if [ -f "$out/BUILD-INFO" ]; then
		echo "$out"
		return 0
	fi

	check_go "$gomod"
	mkdir -p "$cache_root/bin" "$cache_root/logs" "$cache_root/locks"
	local lockfd
	exec {lockfd}>"$cache_root/locks/$name.lock"
	if ! flock -n "$lockfd"; then
		log "$target $release: another build of it is running; waiting for it"
		flock "$lockfd"
	fi
	if [ -f "$out/BUILD-INFO" ]; then
		exec {lockfd}>&-
		echo "$out"
		return 0
	fi

	local tmp total_start=$SECONDS ldflags goversion
	# We hold the lock: a temporary directory of this target left by a killed build is stale.
	rm -rf "$cache_root/bin/.tmp-$name-"*
	tmp="$(mktemp -d "$cache_root/bin/.tmp-$name-XXXXXX")"
	# shellcheck disable=SC2064 # expand $tmp now: the trap must remove this build's directory
	trap "rm -rf '$tmp'" EXIT
	trap 'exit 130' INT TERM HUP
	ldflags="-s -w$(target_ldflags "$target" "$release")"
	goversion="$(GOTOOLCHAIN=local go env GOVERSION)"
	export GOTOOLCHAIN=local GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
	log "$target $release: building into $out ($goversion; logs in $cache_root/logs/)"

	local dl_log="$cache_root/logs/$name-download.log"
	if ! go -C "$mod" mod download >"$dl_log" 2>&1; then
		log "$target $release: downloading modules FAILED; log: $dl_log"
		tail -n 25 "$dl_log" | sed 's/^/  | /' >&2
		exit 1
	fi

	local pair bin pkg i=0 n
	n="$(wc -w <<<"$pairs")"
	for pair in $pairs; do
		i=$((i + 1))
		bin="${pair%%=*}"
		pkg="${pair#*=}"
		log "$target $release: building $bin ($i/$n)"
		# a `<name>.test` binary is the package's tests compiled (`go test -c`), not a command
		local gocmd=(build -v)
		[ "${bin%.test}" = "$bin" ] || gocmd=(test -c -v)
		build_one "$bin" "$cache_root/logs/$name-$bin.log" \
			nice -n 10 go -C "$mod" "${gocmd[@]}" -ldflags="$ldflags" -o "$tmp/$bin" "$pkg" || exit 1
		[ -x "$tmp/$bin" ] || {
			log "$target $release: go build exited 0 but wrote no $bin; log: $cache_root/logs/$name-$bin.log"
			exit 1
		}
	done

	{
		echo "target=$target"
		echo "release=$release"
		echo "key=$key"
		echo "go=$goversion"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "seconds=$((SECONDS - total_start))"
	} >"$tmp/BUILD-INFO"
	chmod 755 "$tmp"
	mv -T "$tmp" "$out"
	trap - EXIT
	exec {lockfd}>&-
	log "$target $release: done in $((SECONDS - total_start)) s ($(du -sh "$out" | cut -f1))"
	echo "$out"
}

if [ "$#" -eq 0 ]; then
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
fi
if [ "$1" = "--list" ]; then
	echo "$all_targets"
	exit 0
fi
for target in "$@"; do
	build_target "$target"
done
