#!/usr/bin/env bash
# Installs the Orkestra webhook without cert-manager.
#
#   manifests/webhook/no-cert-manager/install.sh            # uses `orkestra-webhook` from PATH
#   ORKESTRA_WEBHOOK="docker run --rm -v /tmp:/tmp IMAGE" manifests/webhook/no-cert-manager/install.sh
#
# Mints a CA and a serving certificate (1 year, ECDSA P-256) for
# orkestra-webhook.orkestra-system.svc, applies the CRD and the webhook, adds the CA to caBundle
# of both webhook configurations (keeping the previous CA, so a rotation never breaks admission),
# then stores the pair in the Secret orkestra-webhook-tls. Re-run it to rotate: the pods reload
# the new pair from the Secret volume without a restart. Needs kubectl, base64 and awk.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ns=orkestra-system
svc=orkestra-webhook
webhook_bin="${ORKESTRA_WEBHOOK:-orkestra-webhook}"
work="$(mktemp -d /tmp/orkestra-webhook-certs.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2086 # ORKESTRA_WEBHOOK may be a command with arguments
$webhook_bin certs --out-dir "$work" --service "$svc" --namespace "$ns" >/dev/null

kubectl apply --server-side --force-conflicts --field-manager=orkestra-install -f "$here/../../crd/applicationgroups.yaml"
kubectl apply -k "$here"

# Trust the new CA before serving with it: caBundle = the previous CA (if any) + the new one, so
# the API server accepts both the pods still on the old pair and those that reloaded the new one.
old_bundle="$(kubectl get validatingwebhookconfiguration orkestra-webhook \
  -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null || true)"
{
  if [ -n "$old_bundle" ]; then
    # Keep only the most recent CA of the old bundle.
    printf '%s' "$old_bundle" | base64 -d | awk '/BEGIN CERTIFICATE/{buf=""} {buf=buf $0 "\n"} /END CERTIFICATE/{last=buf} END{printf "%s", last}'
  fi
  cat "$work/ca.crt"
} > "$work/bundle.pem"
ca_bundle="$(base64 -w0 < "$work/bundle.pem")"
for kind in mutatingwebhookconfiguration validatingwebhookconfiguration; do
  kubectl patch "$kind" orkestra-webhook --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]"
done

kubectl -n "$ns" create secret tls orkestra-webhook-tls \
  --cert="$work/tls.crt" --key="$work/tls.key" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" rollout status deployment/orkestra-webhook --timeout="${ROLLOUT_TIMEOUT:-120s}"
echo "orkestra-webhook installed; the CA key was discarded (re-run this script to rotate)"
