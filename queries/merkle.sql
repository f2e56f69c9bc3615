-- MerkleChainLock serialises cycle commits across score processes: each cycle chains to
-- the one before, so two must never be built from the same predecessor.
-- name: MerkleChainLock :exec
SELECT pg_advisory_xact_lock(hashtext('crunch_merkle_chain'));

-- name: MerkleCycleLatest :one
SELECT * FROM merkle_cycles ORDER BY created_at DESC, id DESC LIMIT 1;

-- name: MerkleCycleInsert :one
INSERT INTO merkle_cycles (
    chained_root,
    created_at,
    id,
    previous_cycle_id,
    previous_cycle_root,
    snapshot_count,
    snapshots_root
) VALUES (
    @chained_root::text,
    coalesce(sqlc.narg('now')::timestamptz, now()),
    @id::text,
    sqlc.narg('previous_cycle_id')::text,
    sqlc.narg('previous_cycle_root')::text,
    @snapshot_count::integer,
    @snapshots_root::text
)
RETURNING *;

-- name: MerkleCycleGet :one
SELECT * FROM merkle_cycles WHERE id = @id::text;

-- name: MerkleCycleList :many
SELECT * FROM merkle_cycles
WHERE created_at >= coalesce(sqlc.narg('since')::timestamptz, '-infinity')
  AND created_at <= coalesce(sqlc.narg('until')::timestamptz, 'infinity')
ORDER BY created_at DESC, id DESC
LIMIT @max_rows::integer;

-- MerkleCycleListForPeriod returns the cycles a checkpoint commits, in creation order.
-- name: MerkleCycleListForPeriod :many
SELECT * FROM merkle_cycles
WHERE created_at >= @period_start::timestamptz
  AND created_at < @period_end::timestamptz
ORDER BY created_at, id;

-- MerkleNodeInsertMany stores a tree's nodes; a node's children are the nodes at level-1,
-- positions 2p and 2p+1 (the last one repeated on an odd level).
-- name: MerkleNodeInsertMany :exec
INSERT INTO merkle_nodes (
    checkpoint_id,
    created_at,
    cycle_id,
    hash,
    level,
    position,
    snapshot_content_hash,
    snapshot_id
)
SELECT
    sqlc.narg('checkpoint_id')::text,
    coalesce(sqlc.narg('now')::timestamptz, now()),
    sqlc.narg('cycle_id')::text,
    unnest(@hashes::text[]),
    unnest(@levels::integer[]),
    unnest(@positions::integer[]),
    nullif(unnest(@content_hashes::text[]), ''),
    nullif(unnest(@snapshot_ids::text[]), '');

-- MerkleNodeListCycle returns a cycle's tree, leaves first.
-- name: MerkleNodeListCycle :many
SELECT * FROM merkle_nodes WHERE cycle_id = @cycle_id::text ORDER BY level, position;

-- name: MerkleNodeListCheckpoint :many
SELECT * FROM merkle_nodes WHERE checkpoint_id = @checkpoint_id::text ORDER BY level, position;

-- MerkleLeafLatest finds the newest cycle leaf that committed a snapshot.
-- name: MerkleLeafLatest :one
SELECT * FROM merkle_nodes
WHERE snapshot_id = @snapshot_id::text AND cycle_id IS NOT NULL AND level = 0
ORDER BY created_at DESC, id DESC
LIMIT 1;

-- MerkleCheckpointLeafFind finds the checkpoint whose tree has a cycle's chained root as a
-- leaf.
-- name: MerkleCheckpointLeafFind :one
SELECT * FROM merkle_nodes
WHERE checkpoint_id IS NOT NULL AND level = 0 AND hash = @hash::text
ORDER BY created_at DESC, id DESC
LIMIT 1;

-- name: SnapshotGet :one
SELECT * FROM snapshots WHERE id = @id::text;
