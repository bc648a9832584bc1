"""The DR runbooks of drctl, composed from the runbook engine, the stack adapter and `automation.aws`.

- `failover`: steady -> failed-over (graceful or emergency), and `reconcile-dns`;
- `failback`: prepare (failed-over -> resyncing), switch (resyncing -> steady) and its rollback;
- `status`: the DR state and live readiness;
- `context`: what they share (`DrContext`, `DrAws`, settings); `commands`: the CLI.
"""
