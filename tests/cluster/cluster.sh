#!/usr/bin/env bash
# A throwaway Kubernetes control plane for the tests: kube-apiserver + etcd + kubectl built from their
# Go modules (cached by version outside the repo), started on 127.0.0.1 with a fresh PKI, with our CRD
# and the real Argo Workflows and Flux CRDs installed.
#
#   cluster.sh build                 build (or reuse) the binaries; prints how long it took
#   cluster.sh up   [--state DIR]    start etcd + kube-apiserver, install CRDs, print `export` lines
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
    sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod" | while read -r m; do
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

# ---------------------------------------------------------------------------------------------------
# up / down / env

STATE_DEFAULT="${TMPDIR:-/tmp}/orkestra-cluster"
MARKER=".orkestra-test-cluster"   # `down` removes only a directory that carries this file
CRD_FILE="${ORKESTRA_CRD_FILE:-$REPO/manifests/crd/applicationgroups.yaml}"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

parse_state() {
  STATE="$STATE_DEFAULT"
  while [ $# -gt 0 ]; do
    case "$1" in
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
  stop_pid kube-apiserver "$BIN/kube-apiserver"
  stop_pid etcd "$BIN/etcd"
}

show_logs() {
  local f
  for f in "$STATE/logs/etcd.log" "$STATE/logs/kube-apiserver.log"; do
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
  local name="$1" exe="$2" pid i
  shift
  # In a script (no job control) the child is no process-group leader, so setsid(1) does not fork and
  # $! is the daemon itself once it has exec'd.
  setsid "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/$name.pid"
  # Until the exec, /proc/$pid/exe is bash: wait for it, so later liveness checks can trust the PID.
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
  start_daemon kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$EP" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$AP" --cert-dir="$STATE/certs" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --client-ca-file="$STATE/pki/ca.crt" --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
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
  write_env
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
  stop_all
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

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  build) [ $# -eq 0 ] || die "build takes no arguments"; cmd_build ;;
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  env) cmd_env "$@" ;;
  *) die "usage: cluster.sh build | up [--state DIR] | down [--state DIR] | env [--state DIR]" ;;
esac
