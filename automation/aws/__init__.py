"""The boto3 side of drctl: what runbooks and `drctl status` read from AWS and do to it.

- `clients`: one boto3 client per (service, region), pointed at AWS or at moto,
  failing fast when a region is impaired (`RegionUnreachableError`).
- `waiting`: an injectable clock and the bounded polling loop every action uses.
- `readiness`: readings (ok / warning / failing / unreachable / unknown) that
  never raise for an unreachable region.
- `actions`: idempotent changes (scale, stop writes, promote, fail over the
  global datastore, snapshot, notify) that raise a `DrctlError` naming the resource.
"""
