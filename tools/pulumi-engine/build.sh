#!/usr/bin/env bash
# Builds the Pulumi CLI (the engine) from its Go modules into $1 (default .engine/bin),
# with the Python shims it runs dynamic providers through, taken from the sdk/v3 module.
# Versions come from go.mod: pkg/v3 and sdk/v3 at the same release.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/../../.engine/bin}" && cd "${1:-$here/../../.engine/bin}" && pwd)"
cd "$here"
version="$(go list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)"
sdk="$(go list -m -f '{{.Version}} {{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
if [ "${sdk%% *}" != "$version" ]; then
  echo "pkg/v3 $version and sdk/v3 ${sdk%% *} differ in go.mod: pin both to the same release" >&2
  exit 1
fi
sdk_dir="${sdk#* }"
go mod download github.com/pulumi/pulumi/sdk/v3
go build -o "$out/pulumi" \
  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
# The module cache is read-only without exec bits: install the shims executable, next to the CLI,
# where the engine looks for bundled plugins.
install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$out/"
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$out/"
echo "built $("$out/pulumi" version) into $out"
