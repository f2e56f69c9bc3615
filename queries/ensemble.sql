-- Ensembles are virtual models (models.virtual): their combined predictions are stored as
-- ordinary predictions and scored by the score job like every other.

-- EnsembleModelStopExcept marks every virtual model that is no longer a configured,
-- enabled ensemble STOPPED; its history stays.
-- name: EnsembleModelStopExcept :execrows
UPDATE models
SET state = 'STOPPED',
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE virtual
  AND state <> 'STOPPED'
  AND NOT (id = ANY(@keep_ids::text[]));

-- SnapshotLatestOverallList is the newest overall snapshot of each model: of the given
-- models, or of every real (and, with include_virtual, virtual) model when none is given.
-- The lateral lookup per model walks the (model_id, scope_key, period_start) key backwards
-- instead of sorting the whole snapshots table.
-- name: SnapshotLatestOverallList :many
SELECT m.id AS model_id,
       m.virtual,
       sn.id,
       sn.period_start,
       sn.period_end,
       sn.prediction_count,
       sn.result_summary
FROM models m
CROSS JOIN LATERAL (
    SELECT s.id, s.period_start, s.period_end, s.prediction_count, s.result_summary
    FROM snapshots s
    WHERE s.model_id = m.id
      AND s.scope_key = ''
    ORDER BY s.period_start DESC
    LIMIT 1
) AS sn
WHERE (coalesce(cardinality(@model_ids::text[]), 0) = 0 OR m.id = ANY(@model_ids::text[]))
  AND (@include_virtual::boolean OR NOT m.virtual)
ORDER BY m.id;

-- PredictionRecentValueList returns each given model's newest numeric `value` outputs
-- (at most per_model, performed since `since`), the evidence inverse_variance weighs.
-- name: PredictionRecentValueList :many
SELECT m.id::text AS model_id,
       r.value::double precision AS value
FROM unnest(@model_ids::text[]) AS m (id)
CROSS JOIN LATERAL (
    SELECT (p.inference_output ->> 'value')::double precision AS value
    FROM predictions p
    WHERE p.model_id = m.id
      AND p.performed_at >= @since::timestamptz
      AND p.status IN ('PENDING', 'SCORED')
      AND jsonb_typeof(p.inference_output -> 'value') = 'number'
    ORDER BY p.performed_at DESC
    LIMIT @per_model::integer
) AS r;

-- MetricEnsemblePointList is MetricPointList for one virtual model: the reference
-- ensemble's signal per (slot, scope), which ensemble_correlation, contribution and fnc
-- compare the real models with.
-- name: MetricEnsemblePointList :many
SELECT
    s.scope_key,
    s.slot_at,
    s.performed_at,
    coalesce(s.value, 0)::double precision AS score,
    coalesce(s.actual, 'NaN')::double precision AS actual,
    coalesce(
        CASE WHEN jsonb_typeof(p.inference_output -> 'value') = 'number' THEN (p.inference_output ->> 'value')::double precision END,
        'NaN'
    )::double precision AS signal
FROM scores s
JOIN predictions p ON p.id = s.prediction_id AND p.slot_at = s.slot_at
WHERE s.model_id = @model_id::text
  AND s.success
  AND s.performed_at >= @since::timestamptz
ORDER BY s.performed_at, s.slot_at, s.scope_key;

-- SnapshotEnsembleHistoryList is /reports/ensemble/history: overall snapshots of virtual
-- models, newest first (the Python engine took the oldest 500), optionally of one model
-- and of periods overlapping [since, until].
-- name: SnapshotEnsembleHistoryList :many
SELECT sn.model_id,
       sn.period_start,
       sn.period_end,
       sn.prediction_count,
       sn.result_summary
FROM snapshots sn
JOIN models m ON m.id = sn.model_id AND m.virtual
WHERE sn.scope_key = ''
  AND (sqlc.narg('model_id')::text IS NULL OR sn.model_id = sqlc.narg('model_id')::text)
  AND (sqlc.narg('since')::timestamptz IS NULL OR sn.period_end >= sqlc.narg('since')::timestamptz)
  AND (sqlc.narg('until')::timestamptz IS NULL OR sn.period_start <= sqlc.narg('until')::timestamptz)
ORDER BY sn.period_start DESC, sn.model_id
LIMIT @max_rows::integer;

-- PredictionListForModel is the /signals/ensemble endpoints: a model's newest predictions
-- (performed since `since` when given) with their score when there is one.
-- name: PredictionListForModel :many
SELECT p.id,
       p.scope_key,
       p.slot_at,
       p.performed_at,
       p.resolvable_at,
       p.status,
       p.inference_output,
       p.meta,
       s.value AS score_value,
       s.scored_at
FROM predictions p
LEFT JOIN scores s ON s.prediction_id = p.id AND s.slot_at = p.slot_at
WHERE p.model_id = @model_id::text
  AND (sqlc.narg('since')::timestamptz IS NULL OR p.performed_at >= sqlc.narg('since')::timestamptz)
ORDER BY p.performed_at DESC, p.scope_key
LIMIT @max_rows::integer;
