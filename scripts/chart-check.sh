#!/usr/bin/env bash
# Checks the Helm chart: `helm lint` and `helm template` with the default values and each
# of charts/plugin-server/ci/*.yaml, every rendered object validated against the
# Kubernetes API's types (tools/validate-manifests), and values.schema.json refusing bad
# values. Helm and the validator are built from their Go modules (the Go module proxy)
# into .tools/ on the first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/charts/plugin-server"
TOOLS="$ROOT/.tools"
HELM_VERSION=v3.22.0
mkdir -p "$TOOLS"

# built without release flags, helm reports its minor version only (v3.22)
if [[ "$("$TOOLS/helm" version --template "{{.Version}}" 2>/dev/null)" != "${HELM_VERSION%.*}" ]]; then
  echo "chart-check: building helm $HELM_VERSION from helm.sh/helm/v3"
  GOBIN="$TOOLS" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
(cd "$ROOT/tools/validate-manifests" && GOBIN="$TOOLS" go install .)

HELM="$TOOLS/helm"
VALIDATE="$TOOLS/validate-manifests"
sets=("")
for file in "$CHART"/ci/*.yaml; do sets+=("$file"); done

for values in "${sets[@]}"; do
  name="${values:+$(basename "$values")}"
  args=()
  [[ -n "$values" ]] && args=(--values "$values")
  echo "chart-check: ${name:-default values}"
  "$HELM" lint --strict "$CHART" "${args[@]}"
  "$HELM" template ci-release "$CHART" "${args[@]}" | "$VALIDATE"
done

# the schema is enforced: values of the wrong type or unknown keys are refused
for bad in "replicaCount=two" "env.KAFKA_PARTITIONS=0" "image.pullPolicy=Sometimes" "replicas=3"; do
  if "$HELM" template ci-release "$CHART" --set "$bad" >/dev/null 2>&1; then
    echo "chart-check: values.schema.json let --set $bad through" >&2
    exit 1
  fi
done
echo "chart-check: ok"
