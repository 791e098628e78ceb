#!/usr/bin/env bash
# Publish the agents chart and the jangar image to an OCI registry (the seed README's last step).
#
# Usage: scripts/publish-chart.sh oci://HOST[:PORT]/PATH [--plain-http]
#   The chart goes to oci://HOST/PATH/agents:<chart version> (`helm package` + `helm push`), the jangar image
#   (built without Docker by scripts/build-image.sh) to HOST/PATH/jangar:<appVersion> (`crane push` of its OCI
#   layout), so `helm install agents oci://HOST/PATH/agents --version <v> --set image.repository=HOST/PATH/jangar`
#   runs the image it was published with. --plain-http: the registry speaks HTTP (a local one).
#   Credentials: whatever `helm registry login` and crane's docker config (~/.docker/config.json) hold.
# Prints the chart reference and the image reference (with its digest) on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

target=""
plain=0
for arg in "$@"; do
  case "$arg" in
    --plain-http) plain=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    oci://*) target="${arg%/}" ;;
    *) echo "publish-chart: unexpected argument '$arg' (want oci://HOST/PATH [--plain-http])" >&2; exit 2 ;;
  esac
done
[[ -n "$target" ]] || { echo "publish-chart: the registry is required: oci://HOST[:PORT]/PATH" >&2; exit 2; }

assets="$(bash "$here/k8s-assets.sh")"
helm="$assets/bin/helm"
crane="$assets/bin/crane"
chart_version="$(sed -n 's/^version:[[:space:]]*//p' "$repo/charts/agents/Chart.yaml" | head -n1)"
app_version="$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' "$repo/charts/agents/Chart.yaml" | head -n1)"
image_repo="${target#oci://}/jangar"

W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

echo ">>> jangar image" >&2
archive="$(bash "$here/build-image.sh" --jangar --print-path | tail -n1)"
mkdir -p "$W/layout"
tar -C "$W/layout" -xf "$archive"
flags=()
[[ $plain -eq 1 ]] && flags+=(--insecure)
"$crane" push "${flags[@]}" "$W/layout" "$image_repo:$app_version" >&2
digest="$("$crane" digest "${flags[@]}" "$image_repo:$app_version")"

echo ">>> chart $chart_version" >&2
"$helm" package "$repo/charts/agents" --destination "$W" >&2
hflags=()
[[ $plain -eq 1 ]] && hflags+=(--plain-http)
"$helm" push "${hflags[@]}" "$W/agents-$chart_version.tgz" "$target" >&2

echo "$target/agents:$chart_version"
echo "$image_repo:$app_version@$digest"
