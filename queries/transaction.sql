-- TransactionCommitAsync makes the current transaction's commit return without waiting
-- for its WAL to reach the disk (synchronous_commit = off, for this transaction only).
-- The hot path's writers use it where a Postgres crash that loses the commit loses
-- nothing a crash a moment earlier would not have, and nothing in the process builds on
-- the commit afterwards: a poll's last feed page with its watermark (the next poll
-- fetches it again) and the predict tick (its job's completion is lost with it, and
-- River runs it again). docs/architecture.md, "Crash recovery", has the argument.
-- name: TransactionCommitAsync :exec
SELECT set_config('synchronous_commit', 'off', true);
