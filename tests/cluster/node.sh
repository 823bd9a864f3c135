# Sourced by cluster.sh: the real node (`up --node`). Beside etcd + kube-apiserver it starts
# containerd, a kubelet (node `localhost`, host-network pods), kube-scheduler,
# kube-controller-manager, the Argo workflow-controller, the Flux source-controller and
# helm-controller, a Helm repository of tests/charts/ on 127.0.0.1 and the project's webhook pair
# (registered by URL). REFERENCE §9 has the measured recipe and every trap; the rules that matter:
# - nothing leaves 127.0.0.1: webhooks by URL only, every pod that talks to the API gets a
#   kubeconfig for 127.0.0.1 (Argo's `kubeConfig` + `workflowDefaults`), the pods' resolver is
#   127.0.0.1, Argo's registry look-ups go to a closed local port (HTTPS_PROXY=127.0.0.1:9);
# - nothing machine-wide changes: the kubelet runs in its own mount namespace where the sysctls it
#   would set are bind-mounted copies holding the wanted values (and /var/log is the state dir's),
#   no iptables chains, cgroups under a root of our own, and `down` removes mounts and cgroups and
#   checks that nothing is left.

ARGO_NS=argo
FLUX_NS=flux-system
BUSYBOX_IMAGE="orkestra.test/busybox:v1"
PAUSE_IMAGE="orkestra.test/pause:v$K8S_VERSION"
ARGOEXEC_IMAGE="orkestra.test/argoexec:$ARGO_VERSION"
POD_KUBECONFIG_SECRET=orkestra-test-kubeconfig
# The kubelet's sysctls (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables) and the
# values it wants; in its mount namespace it reads these and has nothing to write.
KUBELET_SYSCTLS=(vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000)

C="" # containerd's directory in the state dir, set by node_paths
node_paths() {
  C="$STATE/containerd"
  CGROUP_ROOT="orkestra-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
  REAL_PYTHON="$(readlink -f "$(python3 -c 'import sys; print(sys.executable)')")"
}

ctr_() { ctr --address "$C/containerd.sock" -n k8s.io "$@"; }

# --- Rust binaries -----------------------------------------------------------------------------

# The webhook (debug build, as the other suites use) and a static release build of kubectl-orkestra
# for the executor image (no musl target here: glibc with crt-static). Both are no-ops when fresh.
build_rust_bins() {
  need_tool cargo "to build the webhook and the executor image from this tree"
  local t=$SECONDS
  (cd "$REPO" && nice cargo build --locked -q -p orkestra-webhook --bin orkestra-webhook) >&2 ||
    die "cargo build of orkestra-webhook failed"
  (cd "$REPO" && RUSTFLAGS='-C target-feature=+crt-static' nice cargo build --locked -q --release \
    -p kubectl-orkestra --bin kubectl-orkestra --target x86_64-unknown-linux-gnu --target-dir "$REPO/target/static") >&2 ||
    die "cargo build of the static kubectl-orkestra failed"
  WEBHOOK_EXE="$REPO/target/debug/orkestra-webhook"
  EXECUTOR_EXE="$REPO/target/static/x86_64-unknown-linux-gnu/release/kubectl-orkestra"
  # A dynamically linked binary would not start in the image (it has no libc).
  if file "$EXECUTOR_EXE" 2>/dev/null | grep -q 'dynamically linked'; then
    die "$EXECUTOR_EXE is dynamically linked; the executor image needs a static binary"
  fi
  log "Rust binaries ready in $((SECONDS - t)) s"
}

# --- images ------------------------------------------------------------------------------------

oci() { "$REAL_PYTHON" "$REPO/tests/cluster/oci.py" "$@"; }

build_images() {
  local d="$STATE/images" t
  t="$(now)"
  mkdir -p "$d/files"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/files/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$d/files/group"
  local base=(--file "$d/files/passwd:etc/passwd:0644" --file "$d/files/group:etc/group:0644" --dir tmp:1777)
  local certs=()
  [ -f /etc/ssl/certs/ca-certificates.crt ] && certs=(--file /etc/ssl/certs/ca-certificates.crt:etc/ssl/certs/ca-certificates.crt:0644)
  EXECUTOR_IMAGE="ghcr.io/orkestra-rs/kubectl-orkestra:v$("$EXECUTOR_EXE" --version | awk '{print $2}')"
  # As kubectl-orkestra/Dockerfile describes it: nonroot, the binary on PATH, nothing written to disk.
  oci image --ref "$EXECUTOR_IMAGE" --out "$d/executor.tar" "${base[@]}" "${certs[@]}" --dir home/nonroot \
    --file "$EXECUTOR_EXE:usr/local/bin/kubectl-orkestra:0755" --user 65532:65532 \
    --entrypoint /usr/local/bin/kubectl-orkestra --env PATH=/usr/local/bin:/usr/bin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt >/dev/null
  # Argo's image runs as 8737 with argoexec on PATH (the init container copies it for emissary).
  oci image --ref "$ARGOEXEC_IMAGE" --out "$d/argoexec.tar" "${base[@]}" "${certs[@]}" \
    --file "$ARGO_BIN/argoexec:bin/argoexec:0755" --user 8737 --entrypoint argoexec --env PATH=/usr/local/bin:/usr/bin:/bin >/dev/null
  oci image --ref "$PAUSE_IMAGE" --out "$d/pause.tar" --file "$BIN/pause:pause:0755" --user 65535:65535 --entrypoint /pause >/dev/null
  local applets=() a
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || applets+=(--symlink "bin/$a:busybox"); done
  oci image --ref "$BUSYBOX_IMAGE" --out "$d/busybox.tar" "${base[@]}" --file /bin/busybox:bin/busybox:0755 "${applets[@]}" \
    --cmd sh --env PATH=/usr/local/bin:/usr/bin:/bin >/dev/null
  local f
  for f in executor argoexec pause busybox; do
    ctr_ images import "$d/$f.tar" >>"$STATE/logs/images.log" 2>&1 ||
      { cat "$STATE/logs/images.log" >&2; die "ctr images import $f.tar failed"; }
  done
  IMAGES="$EXECUTOR_IMAGE $ARGOEXEC_IMAGE $BUSYBOX_IMAGE $PAUSE_IMAGE"
  log "images built and imported in $(since "$t") s: $IMAGES"
}

# --- containerd ----------------------------------------------------------------------------------

start_containerd() {
  mkdir -p "$C/root" "$C/state" "$C/runc" "$C/opt" "$STATE/cni/net.d"
  printf '%s\n' '{"cniVersion": "0.4.0", "name": "orkestra-loopback", "plugins": [{"type": "loopback"}]}' \
    >"$STATE/cni/net.d/10-loopback.conflist"
  cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails in runc (REFERENCE §9.2).
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
EOF
  # An image that is not imported must fail at once, without a DNS query or a connection: the
  # registry client goes through a proxy on a closed local port (it never resolves the host itself).
  start_wrapped containerd /usr/bin/containerd env HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 \
    NO_PROXY=127.0.0.1,localhost /usr/bin/containerd --config "$C/config.toml" || return 1
  wait_until 30 "containerd" containerd_ready
}

containerd_ready() {
  pid_alive "$(cat "$STATE/containerd.pid")" /usr/bin/containerd || return 2
  ctr_ version
}

# --- kubelet -------------------------------------------------------------------------------------

node_pki() {
  (
    cd "$STATE/pki"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node.key \
      -subj "/O=system:nodes/CN=system:node:localhost" -out node.csr
    openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out node.crt \
      -extfile <(printf 'extendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n')
    rm -f node.csr ca.srl
  ) >>"$STATE/logs/pki.log" 2>&1 || { cat "$STATE/logs/pki.log" >&2; die "openssl failed to make the node cert"; }
}

# A kubeconfig for one identity: write_component_kubeconfig FILE CERT KEY
write_component_kubeconfig() {
  local k="$1"
  "$BIN/kubectl" --kubeconfig "$k" config set-cluster t --server="https://127.0.0.1:$AP" \
    --certificate-authority="$STATE/pki/ca.crt" --embed-certs >/dev/null
  "$BIN/kubectl" --kubeconfig "$k" config set-credentials u --client-certificate="$2" --client-key="$3" --embed-certs >/dev/null
  "$BIN/kubectl" --kubeconfig "$k" config set-context t --cluster=t --user=u >/dev/null
  "$BIN/kubectl" --kubeconfig "$k" config use-context t >/dev/null
  chmod 600 "$k"
}

start_kubelet() {
  local k="$STATE/kubelet"
  mkdir -p "$k/root" "$k/varlog" "$k/pod-logs" "$STATE/sysctl"
  echo "nameserver 127.0.0.1" >"$STATE/resolv.conf"
  write_component_kubeconfig "$k/kubeconfig" "$STATE/pki/node.crt" "$STATE/pki/node.key"
  KP="$(free_port)" KHP="$(free_port)"
  cat >"$k/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KHP
tlsCertFile: $STATE/pki/node.crt
tlsPrivateKeyFile: $STATE/pki/node.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$C/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: $STATE/resolv.conf
podLogsDir: $k/pod-logs
serializeImagePulls: false
registerNode: true
# Never garbage-collect the imported images (nothing could pull them back).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
staticPodPath: ""
kubeAPIQPS: 50
kubeAPIBurst: 100
EOF
  # cgroupfs: the kubelet wants its cgroup root to exist in every hierarchy (`down` removes it).
  local h
  for h in /sys/fs/cgroup/*/; do
    mkdir -p "$h$CGROUP_ROOT" || die "cannot create cgroup $h$CGROUP_ROOT"
    if [ -f "$h/cpuset.cpus" ]; then # cgroup v1 cpuset: a child starts empty
      cat "$h/cpuset.cpus" >"$h$CGROUP_ROOT/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$CGROUP_ROOT/cpuset.mems"
    fi
  done
  # The kubelet's volumes must reach runc (host namespace): its root is a shared bind mount.
  mount --bind "$k/root" "$k/root" && mount --make-shared "$k/root" || die "cannot bind-mount $k/root"
  echo "$k/root" >"$STATE/mounts"
  local binds="" s
  for s in "${KUBELET_SYSCTLS[@]}"; do
    mkdir -p "$(dirname "$STATE/sysctl/${s%%=*}")"
    printf '%s\n' "${s#*=}" >"$STATE/sysctl/${s%%=*}"
    binds+="mount --bind '$STATE/sysctl/${s%%=*}' '/proc/sys/${s%%=*}' && "
  done
  # Its own mount namespace: the sysctl files and /var/log (container log symlinks) are ours there.
  start_wrapped kubelet "$BIN/kubelet" unshare --mount --propagation unchanged -- sh -c \
    "${binds}mount --bind '$k/varlog' /var/log && exec '$BIN/kubelet' --config='$k/config.yaml' \
      --kubeconfig='$k/kubeconfig' --root-dir='$k/root' --cert-dir='$k/root/pki' --hostname-override=localhost --v=1" ||
    return 1
  wait_until 60 "node localhost to be Ready" node_ready
}

node_ready() {
  pid_alive "$(cat "$STATE/kubelet.pid")" "$BIN/kubelet" || return 2
  [ "$(kc get node localhost -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# --- scheduler, controller-manager ----------------------------------------------------------------

start_scheduler_and_controller_manager() {
  start_daemon kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port="$(free_port)" --v=1 || return 1
  start_daemon kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$STATE/kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port="$(free_port)" \
    --service-account-private-key-file="$STATE/pki/sa.key" --root-ca-file="$STATE/pki/ca.crt" \
    --use-service-account-credentials=false --v=1 || return 1
}

# --- cluster objects ------------------------------------------------------------------------------

# Node and its identity, namespaces, the kubeconfig Secret for pods, manifests/executor.
install_node_objects() {
  kc apply -f - >>"$STATE/logs/objects.log" 2>&1 <<EOF || { cat "$STATE/logs/objects.log" >&2; return 1; }
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: orkestra-test-nodes
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node"}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:nodes"}
---
apiVersion: v1
kind: Namespace
metadata: {name: $ARGO_NS}
---
apiVersion: v1
kind: Namespace
metadata: {name: $FLUX_NS}
EOF
}

# Pods reach the API through this kubeconfig (127.0.0.1, the pod's own ServiceAccount token), never
# through the `kubernetes` Service IP. pod_kubeconfig_secret NAMESPACE
pod_kubeconfig_secret() {
  local ca
  ca="$(base64 -w0 <"$STATE/pki/ca.crt")"
  cat <<EOF | kc apply -f - >>"$STATE/logs/objects.log" 2>&1
apiVersion: v1
kind: Secret
metadata:
  name: $POD_KUBECONFIG_SECRET
  namespace: $1
  labels: {app.kubernetes.io/part-of: orkestra-test-cluster}
stringData:
  kubeconfig: |
    apiVersion: v1
    kind: Config
    clusters:
      - name: test
        cluster: {server: "https://127.0.0.1:$AP", certificate-authority-data: "$ca"}
    users:
      - name: pod
        user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}
    contexts:
      - name: pod
        context: {cluster: test, user: pod}
    current-context: pod
EOF
}

install_executor_manifests() {
  kc apply -k "$REPO/manifests/executor" >>"$STATE/logs/objects.log" 2>&1 ||
    { cat "$STATE/logs/objects.log" >&2; die "kubectl apply -k manifests/executor failed"; }
  pod_kubeconfig_secret orkestra || die "cannot create the pods' kubeconfig Secret"
}

install_node_crds() {
  local argo source
  argo="$(module_dir "$ARGO_MODULE" "$ARGO_VERSION")" || return 1
  source="$(module_dir "$FLUX_SOURCE_MODULE" "$FLUX_SOURCE_VERSION")" || return 1
  local args=() c f
  # The other 6 Argo CRDs and the other 5 Flux source CRDs (install_crds has Workflow, WorkflowTemplate,
  # HelmRepository); the controllers need all of them.
  for c in clusterworkflowtemplates cronworkflows workflowartifactgctasks workfloweventbindings workflowtaskresults workflowtasksets; do
    args+=(-f "$argo/manifests/base/crds/full/argoproj.io_$c.yaml")
  done
  for f in "$source"/config/crd/bases/source.toolkit.fluxcd.io_*.yaml; do args+=(-f "$f"); done
  kc apply --server-side --force-conflicts --field-manager=orkestra-test-cluster "${args[@]}" >>"$STATE/logs/crds.log" 2>&1 ||
    { cat "$STATE/logs/crds.log" >&2; return 1; }
  for c in clusterworkflowtemplates cronworkflows workflowartifactgctasks workfloweventbindings workflowtaskresults workflowtasksets; do
    wait_until 60 "crd/$c.argoproj.io" crd_established "$c.argoproj.io" || return 1
  done
  for c in buckets gitrepositories helmcharts helmrepositories ocirepositories externalartifacts; do
    kc get crd "$c.source.toolkit.fluxcd.io" >/dev/null 2>&1 || continue
    wait_until 60 "crd/$c.source.toolkit.fluxcd.io" crd_established "$c.source.toolkit.fluxcd.io" || return 1
  done
}

# --- Argo -----------------------------------------------------------------------------------------

start_argo() {
  pod_kubeconfig_secret "$ARGO_NS" || return 1
  local mp
  mp="$(free_port)"
  # Test-only settings live here, never in what the product emits.
  kc apply -f - >>"$STATE/logs/objects.log" 2>&1 <<EOF || { cat "$STATE/logs/objects.log" >&2; return 1; }
apiVersion: v1
kind: ConfigMap
metadata:
  name: workflow-controller-configmap
  namespace: $ARGO_NS
data:
  metricsConfig: |
    enabled: true
    port: $mp
    secure: false
  telemetryConfig: |
    enabled: false
  # init and wait containers get the kubeconfig (argoexec --kubeconfig); workflowDefaults below
  # mounts the same Secret into the main container and points KUBECONFIG at it.
  kubeConfig: |
    secretName: $POD_KUBECONFIG_SECRET
    secretKey: kubeconfig
    mountPath: /kube/config
  workflowDefaults: |
    spec:
      podSpecPatch: |
        hostNetwork: true
        containers:
          - name: main
            env:
              - {name: KUBECONFIG, value: /kube/config}
            volumeMounts:
              - {name: kubeconfig, mountPath: /kube/config, subPath: kubeconfig, readOnly: true}
EOF
  start_wrapped workflow-controller "$ARGO_BIN/workflow-controller" env LEADER_ELECTION_DISABLE=true DEFAULT_REQUEUE_TIME=1s \
    HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
    KUBECONFIG="$STATE/kubeconfig" "$ARGO_BIN/workflow-controller" \
    --configmap workflow-controller-configmap --namespace "$ARGO_NS" --executor-image "$ARGOEXEC_IMAGE" \
    --executor-image-pull-policy Never --loglevel info || return 1
}

# --- Flux and the Helm repository -----------------------------------------------------------------

start_chart_repo() {
  mkdir -p "$STATE/charts"
  oci charts --src "$REPO/tests/charts" --out "$STATE/charts" >"$STATE/logs/charts.log" 2>&1 ||
    { cat "$STATE/logs/charts.log" >&2; die "packaging tests/charts failed"; }
  HP="$(free_port)"
  start_daemon chart-repo "$REAL_PYTHON" -m http.server "$HP" --bind 127.0.0.1 --directory "$STATE/charts" || return 1
  CHART_REPO="http://127.0.0.1:$HP"
  wait_until 30 "the Helm repository" curl -fsS "$CHART_REPO/index.yaml"
}

start_flux() {
  mkdir -p "$STATE/flux/storage"
  local sp
  sp="$(free_port)"
  start_wrapped source-controller "$FLUX_SOURCE_BIN/source-controller" env KUBECONFIG="$STATE/kubeconfig" RUNTIME_NAMESPACE="$FLUX_NS" \
    "$FLUX_SOURCE_BIN/source-controller" --enable-leader-election=false --watch-all-namespaces=true \
    --storage-path="$STATE/flux/storage" --storage-addr="127.0.0.1:$sp" --storage-adv-addr="127.0.0.1:$sp" \
    --metrics-addr="127.0.0.1:$(free_port)" --health-addr="127.0.0.1:$(free_port)" --log-level=info || return 1
  start_wrapped helm-controller "$FLUX_HELM_BIN/helm-controller" env KUBECONFIG="$STATE/kubeconfig" RUNTIME_NAMESPACE="$FLUX_NS" \
    "$FLUX_HELM_BIN/helm-controller" --enable-leader-election=false --watch-all-namespaces=true \
    --metrics-addr="127.0.0.1:$(free_port)" --health-addr="127.0.0.1:$(free_port)" --log-level=info || return 1
}

# --- the webhook ----------------------------------------------------------------------------------

start_webhook() {
  local wmp
  WP="$(free_port)" wmp="$(free_port)"
  echo "$WEBHOOK_EXE" >"$STATE/orkestra-webhook.exe"
  start_daemon orkestra-webhook "$WEBHOOK_EXE" --bind-address "127.0.0.1:$WP" --metrics-bind-address "127.0.0.1:$wmp" \
    --tls-cert-file "$STATE/pki/webhook.crt" --tls-private-key-file "$STATE/pki/webhook.key" || return 1
  wait_until 30 "the webhook's /readyz" curl -fsS "http://127.0.0.1:$wmp/readyz" || return 1
  # The product's own configurations (manifests/webhook/base), with clientConfig.service replaced by
  # url + caBundle: a Service-based registration would send the apiserver to a ClusterIP.
  kc create --dry-run=client -o json -f "$REPO/manifests/webhook/base/webhookconfigurations.yaml" \
    >"$STATE/webhooks.json" 2>>"$STATE/logs/objects.log" || die "cannot read manifests/webhook/base/webhookconfigurations.yaml"
  "$REAL_PYTHON" - "$STATE/webhooks.json" "https://127.0.0.1:$WP" "$(base64 -w0 <"$STATE/pki/ca.crt")" <<'EOF' ||
import json, sys
path, base, ca = sys.argv[1:]
text, items, pos = open(path).read(), [], 0
decoder = json.JSONDecoder()
while text[pos:].strip():  # kubectl prints one JSON document per object
    doc, end = decoder.raw_decode(text[pos:].lstrip())
    pos = len(text) - len(text[pos:].lstrip()) + end
    items += doc.get("items", [doc])
for item in items:
    for hook in item["webhooks"]:
        svc = hook["clientConfig"].pop("service")
        hook["clientConfig"] = {"url": base + svc.get("path", "/"), "caBundle": ca}
text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
assert '"service"' not in text
open(path, "w").write(text)
EOF
    die "cannot rewrite the webhook configurations to URLs"
  kc apply -f "$STATE/webhooks.json" >>"$STATE/logs/objects.log" 2>&1 || { cat "$STATE/logs/objects.log" >&2; return 1; }
}

# --- up / down ------------------------------------------------------------------------------------

node_prerequisites() {
  node_binaries_ok || die "the node's binaries or packages are missing: run '$0 build' first"
  need_tool unshare "to give the kubelet its own mount namespace"
  need_tool ctr "to import images into containerd"
  need_tool python3 "to build images and package charts"
  [ "$(id -u)" = 0 ] || die "up --node runs containerd and a kubelet: it needs root"
}

# The machine's iptables rules and the sysctls the kubelet would set, to compare after `down`.
machine_fingerprint() {
  local s
  if command -v iptables-save >/dev/null 2>&1; then
    iptables-save 2>/dev/null | { grep -v '^[#:]' || true; } | sed 's/\[[0-9:]*\]$//' | sha256sum | cut -c1-16 | sed 's/^/iptables /'
  fi
  for s in "${KUBELET_SYSCTLS[@]}"; do echo "${s%%=*} $(cat "/proc/sys/${s%%=*}" 2>/dev/null)"; done
}

up_node() {
  local t0 t
  t0="$(now)"
  node_paths
  machine_fingerprint >"$STATE/machine.before"
  build_rust_bins
  t="$(now)"
  node_pki
  install_node_objects || die "cannot create the node's objects"
  start_containerd || die "containerd did not start"
  build_images
  start_chart_repo || die "the Helm repository did not start"
  start_scheduler_and_controller_manager || die "kube-scheduler or kube-controller-manager did not start"
  start_kubelet || die "the kubelet did not start"
  install_node_crds || die "the Argo and Flux CRDs did not install"
  start_argo || die "the Argo workflow-controller did not start"
  start_flux || die "the Flux controllers did not start"
  start_webhook || die "the webhook did not start"
  install_executor_manifests
  log "node up in $(since "$t") s after the Rust build ($(since "$t0") s with it)"
}

node_env() {
  printf 'export ORKESTRA_TEST_NODE=1\n'
  printf 'export ORKESTRA_CHART_REPO=%q\n' "$CHART_REPO"
  printf 'export ORKESTRA_TEST_EXECUTOR_IMAGE=%q\n' "$EXECUTOR_IMAGE"
  printf 'export ORKESTRA_TEST_IMAGES=%q\n' "$IMAGES"
  printf 'export ORKESTRA_TEST_POD_KUBECONFIG_SECRET=%q\n' "$POD_KUBECONFIG_SECRET"
}

# Logs `up` shows when it fails.
NODE_LOGS=(containerd.log kubelet.log workflow-controller.log source-controller.log helm-controller.log orkestra-webhook.log)

# Every process of the node, in stop order (the control plane goes last, in stop_all).
NODE_DAEMONS=(orkestra-webhook helm-controller source-controller workflow-controller chart-repo kubelet
  kube-controller-manager kube-scheduler)

node_exe() {
  case "$1" in
    orkestra-webhook) cat "$STATE/orkestra-webhook.exe" 2>/dev/null ;;
    helm-controller) echo "$FLUX_HELM_BIN/helm-controller" ;;
    source-controller) echo "$FLUX_SOURCE_BIN/source-controller" ;;
    workflow-controller) echo "$ARGO_BIN/workflow-controller" ;;
    chart-repo) echo "$REAL_PYTHON" ;;
    containerd) echo /usr/bin/containerd ;;
    *) echo "$BIN/$1" ;;
  esac
}

# The containerd shims of this node: started by our containerd with our socket as their address.
node_shims() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $C/containerd.sock " && echo "${p#/proc/}"
  done
  return 0
}

stop_node() {
  [ -f "$STATE/node" ] || return 0
  node_paths
  local d
  for d in "${NODE_DAEMONS[@]}"; do stop_pid "$d" "$(node_exe "$d")"; done
  # Pods: remove every container through containerd, so shims unmount and exit cleanly.
  if [ -f "$STATE/containerd.pid" ] && containerd_ready >/dev/null 2>&1; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_ containers ls -q 2>/dev/null); do
      ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true
      ctr_ containers rm "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd /usr/bin/containerd
  # Anything left: processes in our cgroups, then our shims.
  local cg pid
  for cg in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$cg" ] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
  done
  for pid in $(node_shims); do kill -KILL "$pid" 2>/dev/null || true; done
  sleep 0.2
  # Mounts under the state dir (rootfs overlays, pod volumes, the kubelet root), deepest first.
  local m
  state_mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # Our cgroups, deepest first.
  for cg in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  # containerd 1.6 puts shim sockets in /run/containerd/s whatever its state dir: remove the
  # directories once empty (rmdir leaves them to another node still running).
  rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true
  return 0
}

state_mounts() { awk -v s="$STATE" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo; }

# What a node must not leave behind; prints each leftover, fails if any.
check_node_gone() {
  node_paths
  local bad=0 m cg p
  for m in $(state_mounts); do
    log "left behind: mount $m"
    bad=1
  done
  for cg in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
    [ -e "$cg" ] && { log "left behind: cgroup $cg"; bad=1; }
  done
  if [ -f "$STATE/machine.before" ] && ! machine_fingerprint | diff "$STATE/machine.before" - >&2; then
    log "changed: iptables rules or sysctls (above: < before up, > after down)"
    bad=1
  fi
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$STATE"; then
      log "left behind: process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" | cut -c1-160)"
      bad=1
    fi
  done
  return $bad
}
