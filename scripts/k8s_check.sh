#!/usr/bin/env bash
# Offline checks of the deployment files:
#  1. every kustomize overlay renders (`kubectl kustomize`);
#  2. every rendered object is valid for each supported Kubernetes version
#     (`kubernetes-validate --strict`: unknown fields are errors);
#  3. the ServiceMonitor (a CRD, for which kubernetes-validate has no schema) and every other
#     object agree with the binary: flags and CONCORD_* names from its `--help`, ports from its
#     listen settings, probe paths from src/admin.rs, grace periods from its drain
#     (scripts/ops_manifest_check.py); the same for docker-compose.yml and the Dockerfile;
#  4. docker-compose.yml is valid Compose (`docker compose config` when the plugin is
#     installed, else the Compose Specification's JSON schema through check-jsonschema).
#
# CONCORD_BIN names the binary (default: a debug build made here). Tools: scripts/ops_check.sh
# installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/concord-target}"

# 1.30 is the first release with the preStop `sleep` action on by default (the image has no
# shell to run `sleep` in); 1.35 is the newest schema we have checked against.
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.31.0 1.32.0 1.33.0 1.34.0 1.35.0}"
# Kinds served by CRDs: no schema in kubernetes-validate, checked by ops_manifest_check.py.
CRD_KINDS="ServiceMonitor"

log() { printf '[k8s-check] %s\n' "$*"; }

if [ -z "${CONCORD_BIN:-}" ]; then
  cargo build --quiet --bin concord
  CONCORD_BIN="$CARGO_TARGET_DIR/debug/concord"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rendered=()
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$out/$name.yaml"
  # Split off the CRD-backed objects: validating them against a missing schema would only warn.
  python3 - "$out/$name.yaml" "$out/$name.core.yaml" $CRD_KINDS <<'PY'
import sys, yaml
src, dst, crds = sys.argv[1], sys.argv[2], set(sys.argv[3:])
docs = [d for d in yaml.safe_load_all(open(src)) if d]
core = [d for d in docs if d["kind"] not in crds]
skipped = sorted({d["kind"] for d in docs} & crds)
yaml.safe_dump_all(core, open(dst, "w"))
print(f"[k8s-check] {src.rsplit('/', 1)[-1]}: {len(docs)} objects, {len(core)} schema-validated; "
      f"{', '.join(skipped) or 'none'} checked by ops_manifest_check.py instead")
PY
  for version in $K8S_VERSIONS; do
    # --strict rejects unknown fields; a missing schema would only be a warning, so any
    # warning left after the split fails the check too.
    if ! report=$(kubernetes-validate --strict --quiet -k "$version" "$out/$name.core.yaml" 2>&1) \
      || [ -n "$report" ]; then
      printf '%s\n' "$report" >&2
      log "$name: invalid for Kubernetes $version"
      exit 1
    fi
  done
  log "$name: valid for Kubernetes ${K8S_VERSIONS// /, }"
  rendered+=(--rendered "$name=$out/$name.yaml")
done

python3 scripts/ops_manifest_check.py --bin "$CONCORD_BIN" "${rendered[@]}" \
  --compose docker-compose.yml --dockerfile Dockerfile

if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config -q
  log "docker-compose.yml: docker compose config ok"
else
  check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml >/dev/null
  log "docker-compose.yml: valid against the Compose Specification schema (no docker compose plugin here)"
fi
