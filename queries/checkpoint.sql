-- CheckpointAggregate aggregates a period's overall snapshots per real model: prediction
-- and snapshot counts, and the prediction-count-weighted mean of every numeric field.
-- name: CheckpointAggregate :many
WITH period AS (
    SELECT s.*
    FROM snapshots s
    JOIN models m ON m.id = s.model_id AND NOT m.virtual
    WHERE s.scope_key = ''
      AND s.period_start >= @period_start::timestamptz
      AND s.period_start < @period_end::timestamptz
      AND s.prediction_count > 0
),
fields AS (
    SELECT p.model_id, kv.key,
           sum((kv.value #>> '{}')::double precision * p.prediction_count) / sum(p.prediction_count) AS mean
    FROM period p, jsonb_each(p.result_summary) AS kv (key, value)
    WHERE jsonb_typeof(kv.value) = 'number'
    GROUP BY p.model_id, kv.key
)
SELECT
    m.id AS model_id,
    m.name AS model_name,
    m.player_name AS cruncher_name,
    (SELECT sum(p.prediction_count) FROM period p WHERE p.model_id = m.id)::bigint AS prediction_count,
    (SELECT count(*) FROM period p WHERE p.model_id = m.id)::bigint AS snapshot_count,
    coalesce((SELECT jsonb_object_agg(f.key, f.mean) FROM fields f WHERE f.model_id = m.id), '{}')::jsonb AS result_summary
FROM models m
WHERE m.id IN (SELECT DISTINCT model_id FROM period)
ORDER BY m.id;

-- name: CheckpointInsert :one
INSERT INTO checkpoints (
    created_at,
    entries,
    id,
    merkle_root,
    meta,
    period_end,
    period_start
) VALUES (
    coalesce(sqlc.narg('now')::timestamptz, now()),
    @entries::jsonb,
    @id::text,
    sqlc.narg('merkle_root')::text,
    @meta::jsonb,
    @period_end::timestamptz,
    @period_start::timestamptz
)
ON CONFLICT (period_start) DO NOTHING
RETURNING *;

-- name: CheckpointGet :one
SELECT * FROM checkpoints WHERE id = @id::text;

-- name: CheckpointGetForUpdate :one
SELECT * FROM checkpoints WHERE id = @id::text FOR UPDATE;

-- name: CheckpointLatest :one
SELECT * FROM checkpoints ORDER BY period_end DESC LIMIT 1;

-- name: CheckpointList :many
SELECT * FROM checkpoints
WHERE (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status')::text)
ORDER BY period_end DESC
LIMIT @max_rows::integer;

-- CheckpointSetStatus moves a checkpoint to its next status; the caller has checked the
-- transition. tx_hash and submitted_at are set on the way to SUBMITTED.
-- name: CheckpointSetStatus :one
UPDATE checkpoints SET
    status = @status::text,
    submitted_at = CASE WHEN @status::text = 'SUBMITTED' THEN coalesce(sqlc.narg('now')::timestamptz, now()) ELSE submitted_at END,
    tx_hash = coalesce(sqlc.narg('tx_hash')::text, tx_hash)
WHERE id = @id::text
RETURNING *;
