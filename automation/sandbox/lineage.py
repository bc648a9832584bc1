"""Replication lineages of the simulated data plane: database rows and Redis keys, with their timestamps.

A `Lineage` holds nodes (RDS instances, Redis groups) that either take writes
or replicate from a source. What it models follows AWS and the engines, each
behaviour cited from the catalogue:

- a replica replays its source's commits `lag_seconds` after they were made
  (streaming delay); `replica_lag` is PostgreSQL's `now() -
  pg_last_xact_replay_timestamp()`, so it grows while nothing is replayed: on
  an idle source between RDS's own periodic commits, and for ever once the
  source is gone (catalogue: rds.postgres-replica-lag-is-time-since-last-replay,
  rds.idle-source-replays-every-few-minutes);
- the source's physical replication slot trails by the bytes written in the
  last `lag_seconds`, RDS's own periodic WAL included, so an idle source's slot reads 0
  between them (catalogue: rds.oldest-replication-slot-lag, rds.fenced-source-slot-lag-reads-zero);
- `default_transaction_read_only` is a default for new transactions, applied
  when the parameter group change is in sync: transactions already open commit
  afterwards, and a session that set read-write for itself keeps writing,
  until a reboot ends every session (catalogue:
  rds.read-only-parameter-is-a-session-default, rds.reboot-ends-every-session);
- a node that becomes a replica again (a demoted Redis primary rejoining) does
  a full sync: its own data is replaced by its source's (catalogue:
  elasticache.rejoining-primary-full-sync).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from automation.errors import DrctlError


@dataclass(frozen=True)
class Write:
    """One acknowledged (or attempted) write. `began_at`: when its transaction opened (default: `written_at`)."""

    key: str
    written_at: datetime
    began_at: datetime | None = None
    overrides_read_only: bool = False
    """Written by a session that set read-write for itself (`SET default_transaction_read_only = off`)."""

    @property
    def opened_at(self) -> datetime:
        return self.began_at or self.written_at


@dataclass(frozen=True)
class Detachment:
    """A replica that stopped replicating (promotion): when, and how far its copy had got."""

    node: str
    source: str
    promoted_at: datetime
    stopped_at: datetime
    """When replication stopped: the promotion, or earlier if the source's region went down first."""
    replicated_through: datetime
    """Every write the source acknowledged up to here is on the promoted node."""
    lost_writes: int

    @property
    def loss_window_seconds(self) -> float:
        """How long before replication stopped the writes that exist only on the old writer begin (0: none)."""
        return (self.stopped_at - self.replicated_through).total_seconds() if self.lost_writes else 0.0


class WriteRefusedError(DrctlError):
    """The node refused the write (a replica, read-only, restarting, or down)."""


@dataclass(frozen=True)
class _Interval:
    start: datetime
    end: datetime | None

    def contains(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


class Lineage:
    """Nodes that take writes, or replicate from a source `lag_seconds` behind it."""

    def __init__(
        self,
        lag_seconds: float,
        *,
        epoch: datetime,
        heartbeat_seconds: float | None = None,
        bytes_per_write: int = 1024,
        heartbeat_bytes: int = 128,
    ) -> None:
        self.lag_seconds = lag_seconds
        self.epoch = epoch
        self.heartbeat_seconds = heartbeat_seconds
        self.bytes_per_write = bytes_per_write
        self.heartbeat_bytes = heartbeat_bytes
        self._own: dict[str, list[Write]] = {}
        self._inherited: dict[str, list[Write]] = {}
        self._source: dict[str, str] = {}
        self._attached_at: dict[str, datetime] = {}
        self._writer_since: dict[str, datetime] = {}
        self._down: dict[str, list[_Interval]] = {}
        self._read_only_since: dict[str, datetime] = {}
        self._restarts: dict[str, list[_Interval]] = {}
        self._acknowledged: list[Write] = []
        self.detachments: list[Detachment] = []
        self._lock = threading.RLock()

    # --- roles -----------------------------------------------------------------------

    def is_replica(self, node: str) -> bool:
        with self._lock:
            return node in self._source

    def source_of(self, node: str) -> str | None:
        with self._lock:
            return self._source.get(node)

    def replicas_of(self, node: str) -> list[str]:
        with self._lock:
            return sorted(replica for replica, source in self._source.items() if source == node)

    def attach(self, node: str, source: str, at: datetime | None = None) -> None:
        """`node` replicates `source` from now on; what it held before is replaced by a full sync."""
        with self._lock:
            self._source[node] = source
            self._attached_at[node] = at or self.epoch
            self._own.pop(node, None)
            self._inherited.pop(node, None)

    def detach(self, node: str, at: datetime) -> Detachment | None:
        """Stop replicating into `node` (promotion): it keeps what it had replayed when replication stopped."""
        with self._lock:
            source = self._source.get(node)
            if source is None:
                return None
            stopped = self._stopped(source, at)
            through = self._cutoff(source, at)
            self._inherited[node] = self.visible(source, through)
            lost = [w for w in self._all_of(source) if through < w.written_at <= stopped]
            del self._source[node]
            self._writer_since[node] = at
            detachment = Detachment(node, source, at, stopped, through, len(lost))
            self.detachments.append(detachment)
            return detachment

    # --- availability -------------------------------------------------------------------

    def node_down(self, node: str, at: datetime) -> None:
        """`node`'s region stops answering at `at`: it neither takes writes nor feeds its replicas."""
        with self._lock:
            intervals = self._down.setdefault(node, [])
            if not intervals or intervals[-1].end is not None:
                intervals.append(_Interval(at, None))

    def node_up(self, node: str, at: datetime) -> None:
        with self._lock:
            intervals = self._down.get(node, [])
            if intervals and intervals[-1].end is None:
                intervals[-1] = _Interval(intervals[-1].start, at)

    def _down_at(self, node: str, at: datetime) -> _Interval | None:
        return next((i for i in self._down.get(node, []) if i.contains(at)), None)

    def restart(self, node: str, start: datetime, end: datetime) -> None:
        """A reboot: every session ends at `start`; nothing is served until `end`."""
        with self._lock:
            self._restarts.setdefault(node, []).append(_Interval(start, end))

    def read_only(self, node: str, at: datetime | None) -> None:
        """New transactions on `node` default to read-only from `at` (None: they may write again)."""
        with self._lock:
            if at is None:
                self._read_only_since.pop(node, None)
            else:
                self._read_only_since.setdefault(node, at)

    def read_only_since(self, node: str) -> datetime | None:
        with self._lock:
            return self._read_only_since.get(node)

    # --- writes ---------------------------------------------------------------------------

    def refusal(self, node: str, write: Write) -> str | None:
        """Why `node` refuses `write`, or None when it accepts it."""
        with self._lock:
            at = write.written_at
            if node in self._source:
                return f"{node} is a read replica of {self._source[node]}"
            if self._down_at(node, at):
                return f"{node} does not answer: its region is down"
            restarts = self._restarts.get(node, [])
            if any(r.contains(at) for r in restarts):
                return f"{node} is restarting"
            since = self._read_only_since.get(node)
            if since is None or at < since:
                return None
            # catalogue: rds.read-only-parameter-is-a-session-default
            session_ended = any(r.start <= at for r in restarts)
            if write.overrides_read_only and not session_ended:
                return None
            opened_before = write.opened_at < since
            ended_since_open = any(write.opened_at <= r.start <= at for r in restarts)
            if opened_before and not ended_since_open:
                return None
            return f"{node} is read-only: cannot execute INSERT in a read-only transaction"

    def write(self, node: str, writes: Iterable[Write]) -> list[Write]:
        """Offer writes to `node`; returns those it acknowledged (the others never happened)."""
        with self._lock:
            accepted = [w for w in writes if self.refusal(node, w) is None]
            self._own.setdefault(node, []).extend(accepted)
            self._acknowledged.extend(accepted)
            self._writer_since.setdefault(node, self.epoch)
            return accepted

    def write_all(self, node: str, writes: Iterable[Write]) -> None:
        """Like `write`, but a refusal raises `WriteRefusedError` naming why."""
        writes = list(writes)
        with self._lock:
            refused = next(((w, why) for w in writes if (why := self.refusal(node, w)) is not None), None)
            if refused is not None:
                raise WriteRefusedError(f"write {refused[0].key} refused: {refused[1]}")
            self.write(node, writes)

    # --- replication ----------------------------------------------------------------------

    def _stopped(self, source: str, at: datetime) -> datetime:
        down = self._down_at(source, at)
        return min(at, down.start) if down is not None else at

    def _cutoff(self, source: str, at: datetime) -> datetime:
        """Everything `source` acknowledged up to here has been replayed on its replicas at `at`."""
        return self._stopped(source, at) - timedelta(seconds=self.lag_seconds)

    def _all_of(self, node: str) -> list[Write]:
        return [*self._inherited.get(node, []), *self._own.get(node, [])]

    def _heartbeats(self, node: str, after: datetime, until: datetime) -> list[datetime]:
        """RDS's own periodic commits on a writer (catalogue: rds.idle-source-replays-every-few-minutes)."""
        if self.heartbeat_seconds is None or until <= after:
            return []
        since = max(after, self._writer_since.get(node, self.epoch))
        step = self.heartbeat_seconds
        first = int((since - self.epoch).total_seconds() // step) + 1
        beats = []
        tick = self.epoch + timedelta(seconds=first * step)
        while tick <= until:
            if not self._down_at(node, tick):
                beats.append(tick)
            tick += timedelta(seconds=step)
        return beats

    def _last_commit(self, node: str, until: datetime) -> datetime | None:
        writes = [w.written_at for w in self._all_of(node) if w.written_at <= until]
        look_back = until - timedelta(seconds=self.heartbeat_seconds or 0)
        beats = self._heartbeats(node, look_back, until)
        found = [*writes, *beats]
        return max(found) if found else None

    def replica_lag(self, node: str, at: datetime) -> float:
        """ReplicaLag at `at`: seconds since the newest replayed commit.

        catalogue: rds.postgres-replica-lag-is-time-since-last-replay
        """
        with self._lock:
            source = self._source.get(node)
            if source is None:
                raise DrctlError(f"{node} is not a replica")
            replayed = self._last_commit(source, self._cutoff(source, at))
            since = replayed if replayed is not None else self._attached_at.get(node, self.epoch)
            return max(0.0, (at - since).total_seconds())

    def slot_lag_bytes(self, node: str, at: datetime) -> float | None:
        """OldestReplicationSlotLag of the source `node`: WAL bytes its most lagging replica has not received."""
        with self._lock:
            replicas = [r for r, s in self._source.items() if s == node]
            if not replicas or self._down_at(node, at):
                return None
            cutoff = self._cutoff(node, at)
            pending = [w for w in self._all_of(node) if cutoff < w.written_at <= at]
            beats = self._heartbeats(node, cutoff, at)
            return float(len(pending) * self.bytes_per_write + len(beats) * self.heartbeat_bytes)

    def visible(self, node: str, at: datetime) -> list[Write]:
        """What `node` holds at `at`."""
        with self._lock:
            source = self._source.get(node)
            if source is not None:
                return self.visible(source, self._cutoff(source, at))
            return [*self._inherited.get(node, []), *(w for w in self._own.get(node, []) if w.written_at <= at)]

    def all_writes(self) -> list[Write]:
        """Every write any node ever acknowledged (a full sync may since have dropped some from their node)."""
        with self._lock:
            return list(self._acknowledged)

    def writes_of(self, node: str, since: datetime) -> list[Write]:
        """What `node` itself acknowledged from `since` on (the split-brain count)."""
        with self._lock:
            return [w for w in self._own.get(node, []) if w.written_at >= since]
