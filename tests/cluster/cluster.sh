#!/usr/bin/env bash
# A throwaway Kubernetes control plane for the tests: kube-apiserver + etcd + kubectl built from their
# Go modules (cached by version outside the repo), started on 127.0.0.1 with a fresh PKI, with our CRD
# and the real Argo Workflows and Flux CRDs installed.
#
#   cluster.sh build                 build (or reuse) the binaries; prints how long it took
#   cluster.sh up   [--state DIR]    start etcd + kube-apiserver, install CRDs, print `export` lines
#   cluster.sh down [--state DIR]    stop what `up` started (by recorded PID) and remove the state
#   cluster.sh env  [--state DIR]    print the `export` lines of a running cluster again
set -euo pipefail

K8S_VERSION="${ORKESTRA_K8S_VERSION:-1.36.3}"
# Real CRD definitions, from the projects' own Go modules (pinned).
ARGO_MODULE="github.com/argoproj/argo-workflows/v3"
ARGO_VERSION="${ORKESTRA_ARGO_VERSION:-v3.7.3}"
FLUX_HELM_MODULE="github.com/fluxcd/helm-controller"
FLUX_HELM_VERSION="${ORKESTRA_FLUX_HELM_VERSION:-v1.4.0}"
FLUX_SOURCE_MODULE="github.com/fluxcd/source-controller"
FLUX_SOURCE_VERSION="${ORKESTRA_FLUX_SOURCE_VERSION:-v1.7.0}"

CACHE="${ORKESTRA_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orkestra-k8s}"
BIN="$CACHE/v$K8S_VERSION"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

need_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed: the test cluster is built from the Kubernetes and etcd Go modules; install Go >= 1.24"
}

binaries_ok() {
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] && [ -x "$BIN/kubectl" ] && [ -f "$BIN/BUILD_INFO" ] &&
    "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$K8S_VERSION"
}

cmd_build() {
  local start=$SECONDS
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if binaries_ok; then
    log "binaries for v$K8S_VERSION are cached in $BIN ($((SECONDS - start)) s)"
    return 0
  fi
  need_go
  local staging="v0.${K8S_VERSION#1.}" b="$CACHE/build-v$K8S_VERSION"
  mkdir -p "$b" "$BIN"
  log "building kube-apiserver, kubectl and etcd v$K8S_VERSION from Go modules (first time: many minutes)"
  (
    cd "$b"
    [ -f go.mod ] || go mod init orkestra.local/k8s-build >/dev/null 2>&1
    go mod download "k8s.io/kubernetes@v$K8S_VERSION"
    local kmod
    kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
    go mod edit -go="$(sed -n 's/^go //p' "$kmod")"
    sed -n 's/^godebug //p' "$kmod" | while read -r d; do go mod edit -godebug="$d"; done
    # Kubernetes maps its staging modules to ./staging; a dependent module must name published tags.
    for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod"); do
      go mod edit -replace="$m=$m@$staging"
    done
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION"
    local etcd
    etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
    go get "go.etcd.io/etcd/server/v3@$etcd"
    local v="k8s.io/component-base/version" minor
    minor=$(cut -d. -f2 <<<"$K8S_VERSION")
    local ldf="-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
    export CGO_ENABLED=0
    go build -trimpath -tags selinux,notest -ldflags "$ldf" -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    go build -trimpath -tags selinux,notest -ldflags "$ldf" -o "$BIN/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
    go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
    for f in kube-apiserver kubectl etcd; do mv "$BIN/$f.tmp" "$BIN/$f"; done
    {
      echo "kubernetes v$K8S_VERSION"
      echo "etcd $etcd"
      go version
      echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
      (cd "$BIN" && sha256sum kube-apiserver kubectl etcd)
    } >"$BIN/BUILD_INFO.tmp"
    mv "$BIN/BUILD_INFO.tmp" "$BIN/BUILD_INFO"
  )
  log "built v$K8S_VERSION into $BIN in $((SECONDS - start)) s"
}

case "${1:-}" in
  build) cmd_build ;;
  *) die "usage: cluster.sh build|up|down|env [--state DIR]" ;;
esac
