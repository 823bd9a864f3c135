#!/usr/bin/env bash
# Builds tests/argo-lint (Argo Workflows' own lint and validation code, at the version the test
# cluster runs) once per version and source, cached like the cluster binaries, and prints the path
# of the binary. Needs Go; the module comes from the Go module proxy (first build: a few minutes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "github.com/argoproj/argo-workflows/v3" { print $2; exit }' "$here/go.mod")"
[ -n "$version" ] || { echo "argo-lint: no argo-workflows version in $here/go.mod" >&2; exit 1; }
cache="${ORKESTRA_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orkestra-k8s}/argo-lint-$version"
source_hash="$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)"
bin="$cache/argo-lint-$source_hash"
if [ ! -x "$bin" ]; then
  command -v go >/dev/null 2>&1 || { echo "argo-lint: Go is needed to build Argo's validator" >&2; exit 1; }
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "argo-lint: building Argo $version's lint and validation code (first time: a few minutes)" >&2
    (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod nice go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .)
    mv "$bin.tmp" "$bin"
  fi
fi
echo "$bin"
