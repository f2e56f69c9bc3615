-- name: DatabasePing :one
SELECT 1::integer AS ok;

-- MigrationLockAcquire takes the session-level advisory lock that serialises `migrate`
-- runs, so two of them at once are safe.
-- name: MigrationLockAcquire :exec
SELECT pg_advisory_lock(@key::bigint);

-- name: MigrationLockRelease :exec
SELECT pg_advisory_unlock(@key::bigint);

-- PartitionEnsure creates the daily partition of a partitioned table that holds `day`.
-- name: PartitionEnsure :one
SELECT crunch_partition_ensure(@parent::text, @day::date) AS created;

-- name: PartitionEnsureRange :one
SELECT count(*) FILTER (WHERE crunch_partition_ensure(@parent::text, d::date))::integer AS created
FROM generate_series(@from_day::date, @to_day::date, interval '1 day') AS d;

-- name: PartitionList :many
SELECT partition_name::text AS partition_name, day::date AS day
FROM crunch_partition_list(@parent::text);

-- name: PartitionDropBefore :one
SELECT crunch_partition_drop_before(@parent::text, @cutoff::date) AS dropped;

-- SnapshotPrune deletes snapshots that ended before the retention cutoff; Merkle leaves
-- keep their hashes (snapshot_id becomes NULL).
-- name: SnapshotPrune :execrows
DELETE FROM snapshots WHERE period_end < @before::timestamptz;

-- InputPrune deletes model inputs no prediction references any more (their predictions'
-- partitions were dropped first).
-- name: InputPrune :execrows
DELETE FROM inputs i
WHERE i.received_at < @before::timestamptz
  AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.input_id = i.id);
