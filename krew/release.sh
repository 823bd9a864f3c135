#!/usr/bin/env bash
# Builds the kubectl-orkestra release archives and the filled krew manifest.
#
#   krew/release.sh package <os> <arch> <version> [dist]   build one archive (on a matching runner)
#   krew/release.sh manifest <version> [dist]               fill krew/orkestra.yaml from dist/*.tar.gz
#   krew/release.sh all <version> [dist]                    every platform this machine can build, then manifest
#
# Archives are dist/kubectl-orkestra-<version>-<os>-<arch>.tar.gz holding `kubectl-orkestra` and
# LICENSE at the top level (krew's default `files: from "*" to "."`). Linux builds are static
# (musl), like kubectl-view-allocations'. CI (a tag push `v*`): one job per platform runs
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

package() {
  local os=$1 arch=$2 version=$3 dist=${4:-dist}
  check_version "$version"
  local target; target=$(target_of "$os" "$arch")
  cargo build --release --locked -p kubectl-orkestra --target "$target"
  local stage; stage=$(mktemp -d)
  cp "target/$target/release/kubectl-orkestra" LICENSE "$stage/"
  mkdir -p "$dist"
  tar -C "$stage" -czf "$dist/kubectl-orkestra-$version-$os-$arch.tar.gz" kubectl-orkestra LICENSE
  rm -rf "$stage"
  echo "$dist/kubectl-orkestra-$version-$os-$arch.tar.gz"
}

manifest() {
  local version=$1 dist=${2:-dist}
  check_version "$version"
  local out; out=$(sed -e '/^#/d' -e "s/^  version: v.*/  version: $version/" \
                       -e "s#/releases/download/v[^/]*/kubectl-orkestra-v[^-]*-#/releases/download/$version/kubectl-orkestra-$version-#" \
                       krew/orkestra.yaml)
  local p os arch archive sum
  for p in "${platforms[@]}"; do
    os=${p%/*}; arch=${p#*/}
    archive="$dist/kubectl-orkestra-$version-$os-$arch.tar.gz"
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
  manifest) shift; manifest "$@" ;;
  all)
    shift; version=$1; dist=${2:-dist}
    for p in "${platforms[@]}"; do package "${p%/*}" "${p#*/}" "$version" "$dist"; done
    manifest "$version" "$dist" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
