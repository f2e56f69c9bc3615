-- name: InputInsert :exec
INSERT INTO inputs (
    id,
    meta,
    raw_data,
    received_at,
    subject
) VALUES (
    @id::text,
    @meta::jsonb,
    @raw_data::jsonb,
    @received_at::timestamptz,
    @subject::text
)
ON CONFLICT (id) DO NOTHING;

-- name: InputGet :one
SELECT * FROM inputs WHERE id = @id::text;

-- PredictionInsertMany stores every prediction of a tick in one statement. The unique
-- (model, config, slot) key makes a retried tick unable to store a second prediction.
-- Every row's meta is @meta unless @metas gives one per row: a tick's rows share their
-- timing, sent once instead of once a model; ensemble rows each carry their weights.
-- (ROWS FROM pads the shorter arrays with NULL, so an empty @metas gives NULL throughout.)
-- name: PredictionInsertMany :execrows
INSERT INTO predictions (
    exec_time_ms,
    failed_reason,
    id,
    inference_output,
    input_id,
    meta,
    model_id,
    performed_at,
    prediction_config_id,
    resolvable_at,
    scope,
    scope_key,
    slot_at,
    status
)
SELECT
    r.exec_time_ms,
    nullif(r.failed_reason, ''),
    r.id,
    r.inference_output,
    @input_id::text,
    coalesce(r.meta, @meta::jsonb),
    r.model_id,
    @performed_at::timestamptz,
    @prediction_config_id::bigint,
    @resolvable_at::timestamptz,
    @scope::jsonb,
    @scope_key::text,
    @slot_at::timestamptz,
    r.status
FROM ROWS FROM (
    unnest(@exec_time_ms::double precision[]),
    unnest(@failed_reasons::text[]),
    unnest(@ids::text[]),
    unnest(@inference_outputs::jsonb[]),
    unnest(@metas::jsonb[]),
    unnest(@model_ids::text[]),
    unnest(@statuses::text[])
) AS r (exec_time_ms, failed_reason, id, inference_output, meta, model_id, status)
ON CONFLICT DO NOTHING;

-- PredictionListPendingByTicks returns the PENDING predictions of the ticks a score
-- process has claimed (their score_queue rows are locked by it, so no other process reads
-- them for scoring), through the (config, slot, model) unique index.
-- name: PredictionListPendingByTicks :many
SELECT p.id, p.slot_at, p.prediction_config_id, p.model_id, p.scope_key, p.performed_at,
       p.inference_output
FROM predictions p
JOIN (
    SELECT unnest(@config_ids::bigint[]) AS config_id,
           unnest(@slots::timestamptz[]) AS slot_at
) t ON p.prediction_config_id = t.config_id AND p.slot_at = t.slot_at
WHERE p.status = 'PENDING'
  -- The bounds let the planner skip the other daily partitions.
  AND p.slot_at >= @min_slot::timestamptz
  AND p.slot_at <= @max_slot::timestamptz;

-- PredictionMarkMany sets the outcome of scoring. No index mentions status, and
-- prediction partitions leave room on each page, so this is a heap-only update.
-- name: PredictionMarkMany :execrows
UPDATE predictions p SET
    status = u.status,
    failed_reason = nullif(u.reason, '')
FROM (
    SELECT unnest(@ids::text[]) AS id,
           unnest(@slots::timestamptz[]) AS slot_at,
           unnest(@statuses::text[]) AS status,
           unnest(@reasons::text[]) AS reason
) u
WHERE p.id = u.id AND p.slot_at = u.slot_at;

-- PredictionMarkTicksScored marks the remaining PENDING predictions of fully scored ticks
-- SCORED, through the (config, slot, model) index: cheaper than matching every id.
-- name: PredictionMarkTicksScored :execrows
UPDATE predictions p SET status = 'SCORED'
FROM (
    SELECT unnest(@config_ids::bigint[]) AS config_id,
           unnest(@slots::timestamptz[]) AS slot_at
) t
WHERE p.prediction_config_id = t.config_id AND p.slot_at = t.slot_at
  AND p.status = 'PENDING'
  AND p.slot_at >= @min_slot::timestamptz
  AND p.slot_at <= @max_slot::timestamptz;

-- PredictionTimingList returns the stage timings of the newest ticks (one row per tick:
-- every prediction of a tick carries the same timing).
-- name: PredictionTimingList :many
SELECT input_id,
       max(performed_at)::timestamptz AS performed_at,
       ((array_agg(meta -> 'timing'))[1])::jsonb AS timing
FROM predictions
WHERE performed_at >= coalesce(sqlc.narg('now')::timestamptz, now()) - interval '7 days'
GROUP BY input_id
ORDER BY 2 DESC
LIMIT @max_rows::integer;
