#!/usr/bin/env bash
# A throwaway Kubernetes control plane for the tests: kube-apiserver + etcd + kubectl built from their
# Go modules (cached by version outside the repo), started on 127.0.0.1 with a fresh PKI, with our CRD
# and the real Argo Workflows and Flux CRDs installed.
#
#   cluster.sh build                 build (or reuse) the binaries; prints how long it took
#   cluster.sh up   [--state DIR]    start etcd + kube-apiserver, install CRDs, print `export` lines
#   cluster.sh up --node [--state DIR]
#                                    also a real node (containerd + kubelet), kube-scheduler,
#                                    kube-controller-manager, the real Argo and Flux controllers, a Helm
#                                    repository of tests/charts/ and the project's webhook (node.sh)
#   cluster.sh down [--state DIR]    stop what `up` started (by recorded PID) and remove the state
#   cluster.sh env  [--state DIR]    print the `export` lines of a running cluster again
#
# The state directory defaults to ${TMPDIR:-/tmp}/orkestra-cluster. Typical use:
#   tests/cluster/cluster.sh build && eval "$(tests/cluster/cluster.sh up)" && cargo test ...; tests/cluster/cluster.sh down
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
# shellcheck source=node.sh
. "$(dirname "${BASH_SOURCE[0]}")/node.sh"

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

need_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed: the test cluster is built from the Kubernetes and etcd Go modules; install Go >= 1.24"
}

# The control plane (`up`) needs these; the node (`up --node`) needs the rest as well.
CONTROL_PLANE_BINS=(kube-apiserver kubectl etcd)
NODE_BINS=(kubelet kube-scheduler kube-controller-manager pause)
ARGO_BIN="$CACHE/argo-$ARGO_VERSION"
FLUX_SOURCE_BIN="$CACHE/flux-source-controller-$FLUX_SOURCE_VERSION"
FLUX_HELM_BIN="$CACHE/flux-helm-controller-$FLUX_HELM_VERSION"
# Debian packages the node needs (binaries we do not build): package -> a file it installs.
NODE_PACKAGES=(containerd:/usr/bin/containerd runc:/usr/sbin/runc containernetworking-plugins:/usr/lib/cni/loopback
  busybox-static:/bin/busybox)

binaries_ok() {
  local f
  for f in "${CONTROL_PLANE_BINS[@]}"; do [ -x "$BIN/$f" ] || return 1; done
  [ -f "$BIN/BUILD_INFO" ] && "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes v$K8S_VERSION"
}

node_binaries_ok() {
  local f
  binaries_ok || return 1
  for f in "${NODE_BINS[@]}"; do [ -x "$BIN/$f" ] || return 1; done
  "$BIN/kubelet" --version 2>/dev/null | grep -qx "Kubernetes v$K8S_VERSION" || return 1
  for f in "$ARGO_BIN"/{workflow-controller,argoexec,BUILD_INFO} "$FLUX_SOURCE_BIN"/{source-controller,BUILD_INFO} \
    "$FLUX_HELM_BIN"/{helm-controller,BUILD_INFO}; do
    [ -e "$f" ] || return 1
  done
  node_packages_ok
}

node_packages_ok() {
  local p
  for p in "${NODE_PACKAGES[@]}"; do [ -e "${p#*:}" ] || return 1; done
}

install_node_packages() {
  node_packages_ok && return 0
  command -v apt-get >/dev/null 2>&1 || die "containerd, runc, containernetworking-plugins and busybox-static are needed; install them (no apt-get here)"
  local p missing=()
  for p in "${NODE_PACKAGES[@]}"; do [ -e "${p#*:}" ] || missing+=("${p%%:*}"); done
  log "installing Debian packages: ${missing[*]}"
  local t=$SECONDS
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    die "apt-get install ${missing[*]} failed"
  # Debian's containerd package may start a service where an init system exists; the node never uses it.
  log "installed ${missing[*]} in $((SECONDS - t)) s"
}

# timed_build OUT_DIR NAME PROGRAM SUBCOMMAND ARGS...: run `PROGRAM SUBCOMMAND -o OUT_DIR/NAME.tmp ARGS...`
# (`go build`, or `gcc -Os`), niced, and note its wall time in OUT_DIR/.times.
timed_build() {
  local out="$1" name="$2" t=$SECONDS
  shift 2
  log "building $name"
  nice "$1" "$2" -o "$out/$name.tmp" "${@:3}"
  echo "$name $((SECONDS - t)) s" >>"$out/.times"
  log "built $name in $((SECONDS - t)) s"
}

# finish_build OUT_DIR HEADER BINARIES...: move the .tmp binaries into place and write BUILD_INFO.
finish_build() {
  local out="$1" header="$2" f
  shift 2
  for f in "$@"; do [ -f "$out/$f.tmp" ] && mv "$out/$f.tmp" "$out/$f"; done
  {
    echo "$header"
    go version
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cat "$out/.times" 2>/dev/null
    (cd "$out" && sha256sum "$@")
  } >"$out/BUILD_INFO.tmp"
  mv "$out/BUILD_INFO.tmp" "$out/BUILD_INFO"
}

k8s_build_dir_ready() { # prepares the wrapper module in $1 (idempotent)
  local b="$1" staging="v0.${K8S_VERSION#1.}" kmod
  cd "$b"
  [ -f go.mod ] || go mod init orkestra.local/k8s-build >/dev/null 2>&1
  go mod download "k8s.io/kubernetes@v$K8S_VERSION"
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$K8S_VERSION.mod"
  go mod edit -go="$(sed -n 's/^go //p' "$kmod")"
  sed -n 's/^godebug //p' "$kmod" | while read -r d; do go mod edit -godebug="$d"; done
  # Kubernetes maps its staging modules to ./staging; a dependent module must name published tags.
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod" | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
}

k8s_ldflags() {
  local v="k8s.io/component-base/version" minor
  minor=$(cut -d. -f2 <<<"$K8S_VERSION")
  echo "-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
}

build_control_plane() {
  local b="$CACHE/build-v$K8S_VERSION" t=$SECONDS
  mkdir -p "$b" "$BIN"
  log "building kube-apiserver, kubectl and etcd v$K8S_VERSION from Go modules (first time: many minutes)"
  (
    k8s_build_dir_ready "$b"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION"
    local etcd ldf
    etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
    go get "go.etcd.io/etcd/server/v3@$etcd"
    ldf="$(k8s_ldflags)"
    export CGO_ENABLED=0
    rm -f "$BIN/.times"
    timed_build "$BIN" kube-apiserver go build -trimpath -tags selinux,notest -ldflags "$ldf" k8s.io/kubernetes/cmd/kube-apiserver
    timed_build "$BIN" kubectl go build -trimpath -tags selinux,notest -ldflags "$ldf" k8s.io/kubernetes/cmd/kubectl
    timed_build "$BIN" etcd go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd" go.etcd.io/etcd/server/v3
    finish_build "$BIN" "kubernetes v$K8S_VERSION, etcd $etcd" "${CONTROL_PLANE_BINS[@]}"
  )
  log "built kube-apiserver, kubectl and etcd v$K8S_VERSION into $BIN in $((SECONDS - t)) s"
}

# kubelet, kube-scheduler and kube-controller-manager from the same wrapper module and version stamp,
# and the pause binary (a static build of Kubernetes' own pause.c).
build_node_k8s() {
  local b="$CACHE/build-v$K8S_VERSION" t=$SECONDS
  log "building kubelet, kube-scheduler, kube-controller-manager v$K8S_VERSION and pause"
  (
    k8s_build_dir_ready "$b"
    go get "k8s.io/kubernetes/cmd/kubelet@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-scheduler@v$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION"
    local ldf c
    ldf="$(k8s_ldflags)"
    export CGO_ENABLED=0
    for c in kubelet kube-scheduler kube-controller-manager; do
      [ -x "$BIN/$c" ] || timed_build "$BIN" "$c" go build -trimpath -tags selinux,notest -ldflags "$ldf" "k8s.io/kubernetes/cmd/$c"
    done
    if [ ! -x "$BIN/pause" ]; then
      command -v gcc >/dev/null 2>&1 || die "gcc is needed to build the pause binary"
      local src
      src="$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION/build/pause/linux/pause.c"
      timed_build "$BIN" pause gcc -Os -static -DVERSION="v$K8S_VERSION" "$src"
      strip "$BIN/pause.tmp" 2>/dev/null || true
    fi
    local etcd
    etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
    finish_build "$BIN" "kubernetes v$K8S_VERSION, etcd $etcd" "${CONTROL_PLANE_BINS[@]}" "${NODE_BINS[@]}"
  )
  log "built the node's Kubernetes binaries in $((SECONDS - t)) s"
}

# copy_module MODULE VERSION DEST: a writable copy of MODULE@VERSION (module zips drop symlinks and
# nested modules, so Argo and Flux do not build with `go install`; see REFERENCE §9.3, §9.4).
copy_module() {
  local json dir
  json="$(cd / && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1@$2")" || die "go mod download $1@$2 failed"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [ -d "$dir" ] || die "go mod download $1@$2 gave no directory"
  rm -rf "$3"
  mkdir -p "$(dirname "$3")"
  cp -r "$dir" "$3.tmp"
  chmod -R u+w "$3.tmp"
  mv "$3.tmp" "$3"
}

# Argo's workflow-controller and argoexec, built inside a copy of the module (its own go.mod, go.sum and
# replaces apply as they do upstream). argoexec's signal_linux.go is a symlink to signal_darwin.go in
# the repository, which the module zip drops.
build_argo() {
  local t=$SECONDS src="$CACHE/src/argo-workflows-$ARGO_VERSION"
  log "building Argo workflow-controller and argoexec $ARGO_VERSION (first time: many minutes)"
  mkdir -p "$ARGO_BIN"
  (
    [ -f "$src/go.mod" ] || copy_module "$ARGO_MODULE" "$ARGO_VERSION" "$src"
    cd "$src"
    [ -f workflow/executor/osspecific/signal_linux.go ] ||
      cp workflow/executor/osspecific/signal_darwin.go workflow/executor/osspecific/signal_linux.go
    local ldf="-s -w -X $ARGO_MODULE.version=$ARGO_VERSION -X $ARGO_MODULE.gitTreeState=clean"
    export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
    rm -f "$ARGO_BIN/.times"
    timed_build "$ARGO_BIN" workflow-controller go build -trimpath -ldflags "$ldf" ./cmd/workflow-controller
    timed_build "$ARGO_BIN" argoexec go build -trimpath -ldflags "$ldf" ./cmd/argoexec
    finish_build "$ARGO_BIN" "argo-workflows $ARGO_VERSION" workflow-controller argoexec
  )
  log "built Argo $ARGO_VERSION into $ARGO_BIN in $((SECONDS - t)) s"
}

# A Flux controller, built inside a copy of its module without the `./api` replace (the api module is
# not in the zip; the required api version of the same release is used instead).
build_flux() { # build_flux MODULE VERSION OUT_DIR BINARY
  local module="$1" version="$2" out="$3" name="$4" t=$SECONDS src="$CACHE/src/${4}-$2"
  log "building Flux $name $version (first time: many minutes)"
  mkdir -p "$out"
  (
    [ -f "$src/go.mod" ] || copy_module "$module" "$version" "$src"
    cd "$src"
    go mod edit -dropreplace="$module/api"
    export CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod
    rm -f "$out/.times"
    timed_build "$out" "$name" go build -trimpath -ldflags "-s -w" .
    finish_build "$out" "$module $version" "$name"
  )
  log "built $name $version into $out in $((SECONDS - t)) s"
}

# with_lock NAME CMD...: run CMD holding $CACHE/NAME.lock (parallel test runs share one build).
with_lock() {
  local name="$1" fd
  shift
  exec {fd}>"$CACHE/$name.lock"
  flock "$fd"
  "$@"
  exec {fd}>&-
}

cmd_build() {
  local start=$SECONDS
  mkdir -p "$CACHE"
  install_node_packages
  need_go
  # Argo and Flux have their own locks and build directories; Kubernetes keeps the lock it always had.
  [ -f "$ARGO_BIN/BUILD_INFO" ] || with_lock ".lock-argo-$ARGO_VERSION" sh_build_if "$ARGO_BIN/BUILD_INFO" build_argo
  [ -f "$FLUX_SOURCE_BIN/BUILD_INFO" ] || with_lock ".lock-flux-source-$FLUX_SOURCE_VERSION" sh_build_if "$FLUX_SOURCE_BIN/BUILD_INFO" \
    build_flux "$FLUX_SOURCE_MODULE" "$FLUX_SOURCE_VERSION" "$FLUX_SOURCE_BIN" source-controller
  [ -f "$FLUX_HELM_BIN/BUILD_INFO" ] || with_lock ".lock-flux-helm-$FLUX_HELM_VERSION" sh_build_if "$FLUX_HELM_BIN/BUILD_INFO" \
    build_flux "$FLUX_HELM_MODULE" "$FLUX_HELM_VERSION" "$FLUX_HELM_BIN" helm-controller
  exec 9>"$CACHE/.lock"
  flock 9
  binaries_ok || build_control_plane
  node_binaries_ok || build_node_k8s
  exec 9>&-
  node_binaries_ok || die "the build finished but some binaries are still missing or wrong"
  log "all binaries cached: $BIN, $ARGO_BIN, $FLUX_SOURCE_BIN, $FLUX_HELM_BIN ($((SECONDS - start)) s)"
}

# sh_build_if FILE CMD...: run CMD unless FILE exists (checked again once the lock is held).
sh_build_if() {
  local f="$1"
  shift
  [ -f "$f" ] || "$@"
}

# ---------------------------------------------------------------------------------------------------
# up / down / env

STATE_DEFAULT="${TMPDIR:-/tmp}/orkestra-cluster"
MARKER=".orkestra-test-cluster"   # `down` removes only a directory that carries this file
CRD_FILE="${ORKESTRA_CRD_FILE:-$REPO/manifests/crd/applicationgroups.yaml}"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

parse_state() {
  STATE="$STATE_DEFAULT"
  NODE=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --node) NODE=1; shift ;;
      --state) [ $# -ge 2 ] || die "--state needs a directory"; STATE="$2"; shift 2 ;;
      --state=*) STATE="${1#--state=}"; shift ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  mkdir -p "$STATE"
  STATE="$(cd "$STATE" && pwd)"
}

need_tool() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2) but not installed"; }

# A free port on 127.0.0.1: bind port 0, read it, close it. `up` retries once if a race loses it.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    local p
    while :; do
      p=$((20000 + RANDOM % 30000))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
  fi
}

# pid_alive PID BINARY: true if PID is running BINARY (guards against a recycled PID).
pid_alive() {
  local pid="$1" exe="$2" real
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  real="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [ "${real% (deleted)}" = "$exe" ]
}

stop_pid() { # stop_pid NAME BINARY: SIGTERM the recorded PID, wait up to 10 s, then SIGKILL
  local name="$1" exe="$2" pid i
  [ -f "$STATE/$name.pid" ] || return 0
  pid="$(cat "$STATE/$name.pid")"
  if pid_alive "$pid" "$exe"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$pid" "$exe" || break; sleep 0.1; done
    if pid_alive "$pid" "$exe"; then
      log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" "$exe" || break; sleep 0.1; done
    fi
  fi
  rm -f "$STATE/$name.pid"
}

stop_all() {
  stop_node
  stop_pid kube-apiserver "$BIN/kube-apiserver"
  stop_pid etcd "$BIN/etcd"
}

show_logs() {
  local f
  for f in "$STATE/logs/etcd.log" "$STATE/logs/kube-apiserver.log" "${NODE_LOGS[@]/#/$STATE/logs/}"; do
    [ -f "$f" ] || continue
    echo "----- last 50 lines of $f -----" >&2
    tail -n 50 "$f" >&2
  done
}

running() { [ -f "$STATE/etcd.pid" ] && pid_alive "$(cat "$STATE/etcd.pid")" "$BIN/etcd"; }

gen_pki() {
  local d="$STATE/pki"
  mkdir -p "$d"
  (
    cd "$d"
    ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -subj "$2" "${@:3}"; }
    sign() {
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out "$1.crt" \
        -extfile <(printf '%s\n' "$2")
    }
    ec ca /CN=orkestra-test-ca -x509 -days 1 -out ca.crt
    ec apiserver /CN=kube-apiserver -out apiserver.csr
    sign apiserver $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
    ec admin "/O=system:masters/CN=orkestra-admin" -out admin.csr
    sign admin 'extendedKeyUsage=clientAuth'
    # A user with no permissions at all: RBAC tests grant it what they need.
    ec user "/O=orkestra-testers/CN=orkestra-user" -out user.csr
    sign user 'extendedKeyUsage=clientAuth'
    # Serving cert for webhooks the tests start on 127.0.0.1 (registered by url + caBundle).
    ec webhook /CN=orkestra-webhook -out webhook.csr
    sign webhook $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ca.srl
  ) >"$STATE/logs/pki.log" 2>&1 || { cat "$STATE/logs/pki.log" >&2; die "openssl failed to make the test PKI"; }
}

start_daemon() { # start_daemon NAME BINARY ARGS...: detached, own session, all fds away from the caller
  start_wrapped "$1" "$2" "${@:2}"
}

# start_wrapped NAME BINARY CMD...: as start_daemon, where CMD (env, unshare, ...) ends by exec'ing BINARY.
start_wrapped() {
  local name="$1" exe="$2" pid i
  shift 2
  # In a script (no job control) the child is no process-group leader, so setsid(1) does not fork and
  # $! is the daemon itself once it has exec'd.
  setsid "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/$name.pid"
  # Until the exec, /proc/$pid/exe is bash (or the wrapper): wait for it, so later liveness checks
  # can trust the PID.
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" "$exe" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  log "$name (pid $pid) did not start as $exe"
  return 1
}

# wait_until SECONDS WHAT CMD...: poll CMD every 100 ms; exit status 2 from CMD means "give up now".
wait_until() {
  local limit="$1" what="$2" deadline rc
  shift 2
  deadline=$((SECONDS + limit))
  while :; do
    rc=0
    "$@" >/dev/null 2>&1 || rc=$?
    [ $rc -eq 0 ] && return 0
    if [ $rc -eq 2 ]; then
      log "gave up waiting for $what: the process exited"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after $limit s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

etcd_healthy() {
  pid_alive "$(cat "$STATE/etcd.pid")" "$BIN/etcd" || return 2
  curl -fsS "http://127.0.0.1:$EP/health" | grep -q '"health":"true"'
}
apiserver_ready() {
  pid_alive "$(cat "$STATE/kube-apiserver.pid")" "$BIN/kube-apiserver" || return 2
  curl -fsS --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://127.0.0.1:$AP/readyz" | grep -qx ok
}

start_control_plane() {
  EP="$(free_port)" PP="$(free_port)" AP="$(free_port)"
  start_daemon etcd "$BIN/etcd" --name t --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$EP" --advertise-client-urls "http://127.0.0.1:$EP" \
    --listen-peer-urls "http://127.0.0.1:$PP" --initial-advertise-peer-urls "http://127.0.0.1:$PP" \
    --initial-cluster "t=http://127.0.0.1:$PP" --unsafe-no-fsync --log-level=warn || return 1
  wait_until 30 "etcd /health" etcd_healthy || return 1
  # Without a controller-manager nothing creates ServiceAccounts, so the plain cluster turns their
  # admission off; the node has one (and its pods get real tokens). The apiserver reaches the
  # kubelet by its hostname, localhost.
  local node_flags=(--disable-admission-plugins=ServiceAccount)
  [ "$NODE" = 1 ] && node_flags=(--kubelet-preferred-address-types=Hostname
    --kubelet-client-certificate="$STATE/pki/admin.crt" --kubelet-client-key="$STATE/pki/admin.key")
  start_daemon kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$EP" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$AP" --cert-dir="$STATE/certs" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --client-ca-file="$STATE/pki/ca.crt" --authorization-mode=RBAC "${node_flags[@]}" \
    --service-account-issuer="https://127.0.0.1:$AP" --service-account-key-file="$STATE/pki/sa.pub" \
    --service-account-signing-key-file="$STATE/pki/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
    --profiling=false --v=1 || return 1
  wait_until 90 "kube-apiserver /readyz" apiserver_ready
}

kc() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }

write_kubeconfig() {
  local p="$STATE/pki"
  kc config set-cluster orkestra-test --server="https://127.0.0.1:$AP" --certificate-authority="$p/ca.crt" --embed-certs >/dev/null
  kc config set-credentials orkestra-admin --client-certificate="$p/admin.crt" --client-key="$p/admin.key" --embed-certs >/dev/null
  kc config set-credentials orkestra-user --client-certificate="$p/user.crt" --client-key="$p/user.key" --embed-certs >/dev/null
  kc config set-context admin --cluster=orkestra-test --user=orkestra-admin >/dev/null
  kc config set-context user --cluster=orkestra-test --user=orkestra-user >/dev/null
  kc config use-context admin >/dev/null
  chmod 600 "$STATE/kubeconfig"
}

# module_dir MODULE VERSION: the module's directory in the Go module cache (downloaded if needed).
module_dir() {
  local json dir
  json="$(cd "$STATE" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1@$2")" ||
    die "go mod download $1@$2 failed: $(sed -n 's/.*"Error": //p' <<<"$json")"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [ -d "$dir" ] || die "go mod download $1@$2 gave no directory"
  echo "$dir"
}

crd_established() {
  [ "$(kc get "crd/$1" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}')" = True ]
}

install_crds() {
  [ -f "$CRD_FILE" ] || die "our CRD $CRD_FILE does not exist (generate it first; ORKESTRA_CRD_FILE overrides the path)"
  need_go
  local argo helm source
  argo="$(module_dir "$ARGO_MODULE" "$ARGO_VERSION")" || return 1
  helm="$(module_dir "$FLUX_HELM_MODULE" "$FLUX_HELM_VERSION")" || return 1
  source="$(module_dir "$FLUX_SOURCE_MODULE" "$FLUX_SOURCE_VERSION")" || return 1
  local files=(
    "$CRD_FILE"
    # The "full" Argo CRDs carry the whole schema (the minimal ones accept anything); they are too big
    # for client-side apply's last-applied annotation, hence --server-side.
    "$argo/manifests/base/crds/full/argoproj.io_workflows.yaml"
    "$argo/manifests/base/crds/full/argoproj.io_workflowtemplates.yaml"
    "$helm/config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml"
    "$source/config/crd/bases/source.toolkit.fluxcd.io_helmrepositories.yaml"
  )
  local f args=()
  for f in "${files[@]}"; do
    [ -f "$f" ] || die "CRD file $f is missing"
    args+=(-f "$f")
  done
  kc apply --server-side --field-manager=orkestra-test-cluster "${args[@]}" >"$STATE/logs/crds.log" 2>&1 ||
    { cat "$STATE/logs/crds.log" >&2; return 1; }
  local crds=(applicationgroups.orkestra.azure.microsoft.com workflows.argoproj.io workflowtemplates.argoproj.io
    helmreleases.helm.toolkit.fluxcd.io helmrepositories.source.toolkit.fluxcd.io)
  local c
  # Not `kubectl wait --for=condition=Established`: on a CRD created a moment ago it fails at once with
  # ".status.conditions accessor error: <nil>" instead of waiting (kubectl 1.36).
  for c in "${crds[@]}"; do
    wait_until 60 "crd/$c to be Established" crd_established "$c" || return 1
  done
  # Established comes before discovery serves the resource: poll until a list works.
  for c in "${crds[@]}"; do
    wait_until 60 "$c to be served" kc get "$c" -A --request-timeout=5s || return 1
  done
}

write_env() {
  local q=printf
  {
    $q 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
    $q 'export ORKESTRA_TEST_KUBECONFIG=%q\n' "$STATE/kubeconfig"
    $q 'export ORKESTRA_TEST_CONTEXT=admin\n'
    $q 'export ORKESTRA_TEST_USER_CONTEXT=user\n'
    $q 'export ORKESTRA_TEST_USER=orkestra-user\n'
    $q 'export ORKESTRA_TEST_SERVER=%q\n' "https://127.0.0.1:$AP"
    $q 'export ORKESTRA_TEST_CA=%q\n' "$STATE/pki/ca.crt"
    $q 'export ORKESTRA_TEST_WEBHOOK_CERT=%q\n' "$STATE/pki/webhook.crt"
    $q 'export ORKESTRA_TEST_WEBHOOK_KEY=%q\n' "$STATE/pki/webhook.key"
    $q 'export ORKESTRA_TEST_KUBECTL=%q\n' "$BIN/kubectl"
    $q 'export ORKESTRA_TEST_STATE=%q\n' "$STATE"
    $q 'export ORKESTRA_TEST_K8S_VERSION=%q\n' "$K8S_VERSION"
  } >"$STATE/env"
}

cmd_up() {
  parse_state "$@"
  local t0
  t0="$(now)"
  binaries_ok || die "no binaries for v$K8S_VERSION in $BIN: run '$0 build' first"
  [ "$NODE" = 1 ] && node_prerequisites
  need_tool openssl "to make the throwaway PKI"
  need_tool curl "to probe etcd and kube-apiserver"
  need_tool setsid "to detach etcd and kube-apiserver"
  if [ -e "$STATE/$MARKER" ]; then
    running && die "a test cluster is already running in $STATE: '$0 down --state $STATE' first"
    stop_all
    rm -rf "$STATE"
    mkdir -p "$STATE"
  elif [ -n "$(ls -A "$STATE")" ]; then
    die "$STATE is not empty and is not a test cluster state directory; choose another --state"
  fi
  touch "$STATE/$MARKER"
  mkdir -p "$STATE/logs" "$STATE/certs"
  # From here on, any failure stops what was started and shows both logs.
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed"; show_logs; stop_all; fi' EXIT
  gen_pki
  local attempt
  for attempt in 1 2; do
    if start_control_plane; then break; fi
    # A lost port race shows as a bind error; retry once on fresh ports, anything else is fatal.
    if [ "$attempt" = 1 ] && grep -qi 'address already in use' "$STATE"/logs/*.log; then
      log "a port was taken between choosing and binding it; retrying on new ports"
      stop_all
      rm -rf "$STATE/etcd"
      : >"$STATE/logs/etcd.log"
      : >"$STATE/logs/kube-apiserver.log"
      continue
    fi
    die "the control plane did not come up"
  done
  local t_ready
  t_ready="$(since "$t0")"
  write_kubeconfig
  wait_until 5 "'kubectl get ns default'" kc get ns default || die "the API is not usable"
  install_crds
  if [ "$NODE" = 1 ]; then
    touch "$STATE/node"
    up_node
  fi
  write_env
  [ "$NODE" = 1 ] && node_env >>"$STATE/env"
  trap - EXIT
  log "up in $(since "$t0") s (kube-apiserver ready after $t_ready s); state in $STATE"
  log "etcd pid $(cat "$STATE/etcd.pid"), kube-apiserver pid $(cat "$STATE/kube-apiserver.pid"), API https://127.0.0.1:$AP"
  cat "$STATE/env"
}

cmd_down() {
  parse_state "$@"
  if [ ! -e "$STATE/$MARKER" ]; then
    log "no test cluster state in $STATE; nothing to stop"
    rmdir "$STATE" 2>/dev/null || true
    return 0
  fi
  local t0
  t0="$(now)"
  local node=0
  [ -f "$STATE/node" ] && node=1
  stop_all
  # A node must leave no mount, cgroup or process behind; say so if it did (and keep the state).
  if [ "$node" = 1 ] && ! check_node_gone; then
    die "down left the above behind; state kept in $STATE"
  fi
  rm -rf "$STATE"
  log "down in $(since "$t0") s"
}

cmd_env() {
  parse_state "$@"
  if [ ! -f "$STATE/env" ] || ! running; then
    die "no running test cluster in $STATE: '$0 up --state $STATE' starts one"
  fi
  cat "$STATE/env"
}

# Sourced (to debug one step by hand): define the functions only.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  build) [ $# -eq 0 ] || die "build takes no arguments"; cmd_build ;;
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  env) cmd_env "$@" ;;
  *) die "usage: cluster.sh build | up [--node] [--state DIR] | down [--state DIR] | env [--state DIR]" ;;
esac
