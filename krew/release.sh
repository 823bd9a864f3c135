#!/usr/bin/env bash
# Builds the kubectl-orkestra release archives and the filled krew manifest.
#
#   krew/release.sh package <os> <arch> <version> [dist]   build one archive (on a matching runner)
#   krew/release.sh manifest <version> [dist] [--only-built] fill krew/orkestra.yaml from dist/*.tar.gz
#   krew/release.sh all <version> [dist]                    every platform this machine can build, then manifest
#   krew/release.sh static-check <binary>                    no interpreter, no shared library, runs in an empty root
#
# Archives are dist/kubectl-orkestra-<version>-<os>-<arch>.tar.gz holding `kubectl-orkestra`,
# `kubectl_complete-orkestra` (kubectl's completion hook) and LICENSE at the top level (krew's
# default `files: from "*" to "."`). Linux builds are static (musl), like kubectl-view-allocations';
# without the musl target, ORKESTRA_STATIC=gnu builds linux/amd64 static against glibc instead
# (x86_64-unknown-linux-gnu, -C target-feature=+crt-static), as the executor image does.
# `manifest --only-built` keeps only the platforms whose archives exist (CI checks that one with
# krew's own validator and a `krew install --archive`: krew/check.sh). CI (a tag push `v*`): one job per platform runs
# `package` (linux-amd64 and linux-arm64 on ubuntu runners with the musl targets, darwin on
# macos-13 / macos-14), uploads the archives to the GitHub release, then one job runs `manifest`
# and opens the krew-index pull request with dist/orkestra.yaml (or krew-release-bot does it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)

target_of() {
  case "$1/$2" in
    linux/amd64) echo x86_64-unknown-linux-musl ;;
    linux/arm64) echo aarch64-unknown-linux-musl ;;
    darwin/amd64) echo x86_64-apple-darwin ;;
    darwin/arm64) echo aarch64-apple-darwin ;;
    *) echo "release.sh: unsupported platform $1/$2" >&2; return 1 ;;
  esac
}

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

check_version() {
  [[ "$1" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "release.sh: version must be semver with a v prefix (v1.2.3), got $1" >&2; exit 2; }
}

# Fails, saying how to add it, when the Rust target is not installed.
require_target() {
  local target=$1
  command -v rustup >/dev/null || return 0
  rustup target list --installed | grep -qx "$target" && return 0
  {
    echo "release.sh: the Rust target $target is not installed; add it with:"
    echo "  rustup target add $target"
    if [[ $target == *-linux-musl ]]; then
      echo "  and a C toolchain for it (Debian: apt-get install musl-tools; for aarch64 on x86_64 also a cross linker, e.g. cargo-zigbuild)"
    fi
    if [[ $target == x86_64-unknown-linux-musl ]]; then
      echo "  or build static against glibc instead: ORKESTRA_STATIC=gnu krew/release.sh package linux amd64 ..."
    fi
  } >&2
  exit 1
}

package() {
  local os=$1 arch=$2 version=$3 dist=${4:-dist}
  check_version "$version"
  local target; target=$(target_of "$os" "$arch")
  local target_dir=target exe
  if [[ ${ORKESTRA_STATIC:-} == gnu && $os/$arch == linux/amd64 ]]; then
    # Static glibc: the same build (flags, target dir) as the executor image's in tests/cluster.
    target=x86_64-unknown-linux-gnu target_dir=target/static
    RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked -q --release \
      -p kubectl-orkestra --bin kubectl-orkestra --target "$target" --target-dir "$target_dir"
  else
    require_target "$target"
    cargo build --release --locked -p kubectl-orkestra --bin kubectl-orkestra --target "$target"
  fi
  exe="$target_dir/$target/release/kubectl-orkestra"
  [[ $os == linux ]] && static_check "$exe" >&2
  local stage; stage=$(mktemp -d)
  cp "$exe" LICENSE kubectl-orkestra/completion/kubectl_complete-orkestra "$stage/"
  mkdir -p "$dist"
  tar -C "$stage" -czf "$dist/kubectl-orkestra-$version-$os-$arch.tar.gz" kubectl-orkestra kubectl_complete-orkestra LICENSE
  rm -rf "$stage"
  echo "$dist/kubectl-orkestra-$version-$os-$arch.tar.gz"
}

# A static Linux binary: no ELF interpreter, no shared library needed (a static-pie, as glibc's
# crt-static build is, keeps a dynamic section for its own relocations), and it runs alone in an empty
# root directory (no /lib, no libc), via chroot (as root) or an unprivileged user namespace.
static_check() {
  local exe=$1
  if readelf -lW "$exe" | grep -q 'INTERP'; then echo "release.sh: $exe asks for an ELF interpreter (not static)" >&2; exit 1; fi
  if readelf -dW "$exe" | grep -q '(NEEDED)'; then echo "release.sh: $exe needs shared libraries (not static): $(readelf -dW "$exe" | grep '(NEEDED)' | tr -s ' ')" >&2; exit 1; fi
  local root; root=$(mktemp -d)
  cp "$exe" "$root/kubectl-orkestra"
  local out
  if [[ $(id -u) == 0 ]]; then
    out=$(chroot "$root" /kubectl-orkestra --version)
  else
    out=$(unshare --user --map-root-user chroot "$root" /kubectl-orkestra --version)
  fi
  echo "static: $exe has no interpreter and needs no shared library; in an empty root ($(find "$root" | wc -l) entries: itself and the directory) it printed: $out"
  rm -rf "$root"
}

manifest() {
  local version=$1 dist=${2:-dist} only_built=${3:-}
  check_version "$version"
  local out; out=$(sed -e '/^#/d' -e "s/^  version: v.*/  version: $version/" \
                       -e "s#/releases/download/v[^/]*/kubectl-orkestra-v[^-]*-#/releases/download/$version/kubectl-orkestra-$version-#" \
                       krew/orkestra.yaml)
  local p os arch archive sum
  for p in "${platforms[@]}"; do
    os=${p%/*}; arch=${p#*/}
    archive="$dist/kubectl-orkestra-$version-$os-$arch.tar.gz"
    if [[ ! -f "$archive" && $only_built == --only-built ]]; then
      # Drop this platform's entry: from its "- selector:" line to the next one (or the end).
      out=$(awk -v sha="SHA256_${os^^}_${arch^^}" '
        /^    - selector:/ { if (n) { if (!skip) printf "%s", buf }; buf=""; n=1; skip=0 }
        n { buf = buf $0 "\n"; if (index($0, sha)) skip=1; next }
        { print }
        END { if (n && !skip) printf "%s", buf }' <<<"$out")
      continue
    fi
    [[ -f "$archive" ]] || { echo "release.sh: missing $archive (run: release.sh package $os $arch $version)" >&2; exit 1; }
    sum=$(sha256 "$archive")
    out=${out//SHA256_${os^^}_${arch^^}/$sum}
  done
  if grep -q 'SHA256_' <<<"$out"; then echo "release.sh: placeholders left in the manifest" >&2; exit 1; fi
  mkdir -p "$dist"
  printf '%s\n' "$out" > "$dist/orkestra.yaml"
  echo "$dist/orkestra.yaml"
}

case "${1:-}" in
  package) shift; package "$@" ;;
  static-check) shift; static_check "$@" ;;
  manifest) shift; manifest "$@" ;;
  all)
    shift; version=$1; dist=${2:-dist}
    for p in "${platforms[@]}"; do package "${p%/*}" "${p#*/}" "$version" "$dist"; done
    manifest "$version" "$dist" ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
