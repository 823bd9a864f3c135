#!/usr/bin/env bash
# What krew itself says of our release (run by tests/run, as CI does):
#   1. builds the linux/amd64 archive (static: musl when its target is installed, else glibc with
#      crt-static) and shows the binary runs in an empty root with no libc;
#   2. fills the manifest for the platforms built (release.sh manifest --only-built);
#   3. runs krew's real validator, `validate-krew-manifest -skip-install` (the install step would
#      download the release URLs; step 4 installs from the local archive instead), and checks it
#      still rejects the unfilled template (placeholder checksums);
#   4. `krew install --manifest --archive` into a throwaway KREW_ROOT, then runs the installed plugin
#      and its completion hook.
# krew and validate-krew-manifest are built from the sigs.k8s.io/krew Go module (Go module proxy),
# cached in ~/.cache/orkestra-k8s/krew-<version> like the cluster binaries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KREW_VERSION=v0.4.3
tools="${ORKESTRA_K8S_CACHE:-$HOME/.cache/orkestra-k8s}/krew-$KREW_VERSION"
if [[ ! -x "$tools/krew" || ! -x "$tools/validate-krew-manifest" ]]; then
  echo "krew/check.sh: building krew $KREW_VERSION and validate-krew-manifest into $tools" >&2
  mkdir -p "$tools"
  (cd "$(mktemp -d)" && GOBIN="$tools" GOFLAGS=-mod=mod nice go install \
    "sigs.k8s.io/krew/cmd/krew@$KREW_VERSION" "sigs.k8s.io/krew/cmd/validate-krew-manifest@$KREW_VERSION")
fi

version=v0.0.0-check
dist=$(mktemp -d "${TMPDIR:-/tmp}/orkestra-krew.XXXXXX")
root=$(mktemp -d "${TMPDIR:-/tmp}/orkestra-krew-root.XXXXXX")
trap 'rm -rf "$dist" "$root"' EXIT

static=gnu
if command -v rustup >/dev/null && rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then static=; fi
archive=$(ORKESTRA_STATIC=$static krew/release.sh package linux amd64 "$version" "$dist")
krew/release.sh manifest "$version" "$dist" --only-built >/dev/null
manifest="$dist/orkestra.yaml"

echo "krew/check.sh: validate-krew-manifest on the filled manifest" >&2
"$tools/validate-krew-manifest" -manifest "$manifest" -skip-install
mkdir -p "$dist/template"
cp krew/orkestra.yaml "$dist/template/orkestra.yaml"
if "$tools/validate-krew-manifest" -manifest "$dist/template/orkestra.yaml" -skip-install 2>"$dist/template.err"; then
  echo "krew/check.sh: the unfilled template passed krew's validator; it should not (placeholder checksums)" >&2
  exit 1
fi
echo "krew/check.sh: the unfilled template is rejected, as expected: $(grep -o 'sha256[^"]*' "$dist/template.err" | head -n1)" >&2

echo "krew/check.sh: krew install --manifest --archive into $root" >&2
KREW_ROOT="$root" KREW_OS=linux KREW_ARCH=amd64 "$tools/krew" install --manifest="$manifest" --archive="$archive"
"$root/bin/kubectl-orkestra" --version
store=$(ls -d "$root"/store/orkestra/*/)
[[ -x "${store}kubectl_complete-orkestra" && -f "${store}LICENSE" ]] || { echo "krew/check.sh: the install lacks the completion hook or LICENSE: $(ls "$store")" >&2; exit 1; }
# The caveat's link, then kubectl's completion call.
ln -sf "${store}kubectl_complete-orkestra" "$root/bin/"
answer=$(PATH="$root/bin:$PATH" "$root/bin/kubectl_complete-orkestra" st)
[[ $answer == status$'\t'* ]] || { echo "krew/check.sh: the completion hook answered: $answer" >&2; exit 1; }
echo "krew/check.sh: ok (validator passed, installed and ran from $root)" >&2
