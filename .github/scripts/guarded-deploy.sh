#!/usr/bin/env bash
# Runs inside `drctl deploy-gate --stack "$STACK" --`, which holds the stack's
# runbook lock for the whole script and has written the DR-state authority's
# keys into Pulumi.<stack>.yaml: nothing can change the state between the
# guarded preview and the update, and the update cannot undo a failover. A
# cancelled workflow reaches pulumi through deploy-gate, which passes the
# signal on and keeps the lock until pulumi has exited.
#
# The guard reads this preview; the update that follows runs the same commit,
# config and state with refresh off, and the guard refuses any preview that
# leaves a stateful resource unprotected, so the engine itself refuses to
# delete or replace one during `up` whatever its own plan says
# (docs/plan-guard-policy-ci.md, "Guarding the plan that is applied").
# A failed preview or update exits non-zero (catalogue: pulumi-cli.exit-codes), which stops the script.
set -euo pipefail
: "${STACK:?STACK must name the fully qualified stack}"
# Every flag of the CLI can come from a PULUMI_OPTION_* variable, and array flags add to the command line's
# (catalogue: pulumi-cli.option-environment-variables): a runner's or a repository variable's
# PULUMI_OPTION_TARGET or PULUMI_OPTION_REFRESH must not change what is previewed and applied.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^PULUMI_OPTION_' || true)
mkdir -p out
# Never refresh: a region may be down (pulumi #6468).
pulumi preview --stack "$STACK" --non-interactive --refresh=false --policy-pack policy --json >out/preview.json
.venv/bin/drctl guard out/preview.json --allow-file .github/guard-allow.txt --json >out/guard.json || {
  cat out/guard.json
  exit 1
}
cat out/guard.json
pulumi up --stack "$STACK" --non-interactive --yes --skip-preview --refresh=false --policy-pack policy
