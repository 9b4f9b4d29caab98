#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, npm dependencies, build.
# Fast when nothing is missing: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (it installs packages and the lab creates network namespaces); try: sudo npm test"
  exit 1
fi

DEBIAN_PACKAGES=(
  clang llvm libc6-dev libbpf-dev bpftool iproute2 util-linux
  etcd-server etcd-client
  wireguard-tools wireguard-go
  charon-systemd libcharon-extra-plugins libstrongswan-standard-plugins strongswan-swanctl
  tcpdump iputils-ping socat iperf3 containernetworking-plugins iptables file
  mmdebstrap umoci runc
  # what Kubernetes' e2e tests exec in the lab's busybox/agnhost images (nc, dig/nslookup, curl)
  netcat-openbsd bind9-dnsutils curl
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  # --no-install-recommends: wireguard-tools would otherwise pull in a kernel image and initramfs.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# npm ci only when the lockfile changed since the last install.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.bootstrap-lock-hash
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
  echo "$lock_hash" >"$stamp"
fi

# tsc is incremental: a no-op build takes well under a second.
log "building TypeScript"
npx --no-install tsc -p tsconfig.json

make -s -C cni >&2

if [[ -f bpf/Makefile ]]; then
  make -s -C bpf >&2
fi
log "ready"
