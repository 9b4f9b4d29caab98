# Sourced by image/build.sh and image/lab-layers.sh: the two inputs of the image that take long to
# make, built once and cached under ${CLUSTERMESH_CACHE:-~/.cache/clustermesh}/image, keyed by their
# inputs. Expects log() and the repository root as the working directory.

image_cache=${CLUSTERMESH_CACHE:-$HOME/.cache/clustermesh}/image
mkdir -p "$image_cache"

# The Debian base (mmdebstrap, image/packages.txt) as a tar: sets $base.
ensure_base_tar() {
  local missing=() packages base_key tool
  for tool in mmdebstrap umoci; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
  packages=$(grep -v '^#' image/packages.txt | paste -sd, -)
  base_key=$(printf 'bookworm\n%s\n' "$packages" | sha256sum | cut -c1-16)
  base=$image_cache/debian-base-$base_key.tar
  if [[ ! -f $base ]]; then
    log "building the Debian base with mmdebstrap (bookworm minbase + ${packages//,/ })"
    rm -rf "$base.tmp"
    mmdebstrap --quiet --variant=minbase --format=tar --include="$packages" \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
      bookworm "$base.tmp" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main" >&2
    mv "$base.tmp" "$base"
  fi
}

# Production node_modules, once per lockfile: sets $modules.
ensure_prod_modules() {
  local lock_key tmp
  lock_key=$(sha256sum package-lock.json | cut -c1-16)
  modules=$image_cache/node-modules-$lock_key
  if [[ ! -d $modules ]]; then
    log "installing production npm dependencies"
    tmp=$(mktemp -d "$image_cache/npm.XXXXXX")
    cp package.json package-lock.json "$tmp/"
    (cd "$tmp" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
    rm -rf "$modules.tmp" && mv "$tmp/node_modules" "$modules.tmp" && mv "$modules.tmp" "$modules"
    rm -rf "$tmp"
  fi
}
