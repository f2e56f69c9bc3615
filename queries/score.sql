-- ScoreDueList takes a batch of PENDING predictions whose horizon has passed, locks them
-- (skipping rows another score process holds, so several processes share the work and
-- none is scored twice) and resolves their ground truth window in the same statement: the
-- first and last feed record of the prediction's scope in [performed_at, resolvable_at],
-- read through the primary key index of the partition that holds them.
-- name: ScoreDueList :many
SELECT
    p.id,
    p.slot_at,
    p.model_id,
    p.input_id,
    p.scope_key,
    p.scope,
    p.inference_output,
    p.performed_at,
    p.resolvable_at,
    -- The lateral joins find nothing when the window is empty; the flags say so, because
    -- sqlc cannot see that these columns become nullable.
    (f.ts_event IS NOT NULL)::boolean AS has_first,
    coalesce(f.ts_event, 'epoch')::timestamptz AS first_ts,
    coalesce(f.payload, '{}')::jsonb AS first_payload,
    (l.ts_event IS NOT NULL)::boolean AS has_last,
    coalesce(l.ts_event, 'epoch')::timestamptz AS last_ts,
    coalesce(l.payload, '{}')::jsonb AS last_payload
FROM predictions p
LEFT JOIN LATERAL (
    SELECT r.ts_event, r.payload
    FROM feed_records r
    WHERE r.source = p.scope ->> 'source'
      AND r.subject = p.scope ->> 'subject'
      AND r.kind = p.scope ->> 'kind'
      AND r.granularity = p.scope ->> 'granularity'
      AND r.ts_event >= p.performed_at
      AND r.ts_event <= p.resolvable_at
    ORDER BY r.ts_event
    LIMIT 1
) f ON true
LEFT JOIN LATERAL (
    SELECT r.ts_event, r.payload
    FROM feed_records r
    WHERE r.source = p.scope ->> 'source'
      AND r.subject = p.scope ->> 'subject'
      AND r.kind = p.scope ->> 'kind'
      AND r.granularity = p.scope ->> 'granularity'
      AND r.ts_event >= p.performed_at
      AND r.ts_event <= p.resolvable_at
    ORDER BY r.ts_event DESC
    LIMIT 1
) l ON true
WHERE p.status = 'PENDING'
  AND p.resolvable_at <= coalesce(sqlc.narg('now')::timestamptz, now())
  -- Keyset pagination within one scoring run: predictions examined but left PENDING
  -- (their ground truth may still arrive) are not examined again until the next run.
  AND (p.resolvable_at, p.id) > (coalesce(sqlc.narg('after_ts')::timestamptz, '-infinity'), coalesce(sqlc.narg('after_id')::text, ''))
ORDER BY p.resolvable_at, p.id
LIMIT @max_rows::integer
FOR UPDATE OF p SKIP LOCKED;

-- ScoreInsertMany writes a batch of scores; the primary key makes a rerun a no-op.
-- name: ScoreInsertMany :execrows
INSERT INTO scores (
    actual,
    failed_reason,
    model_id,
    performed_at,
    prediction_id,
    result,
    scope_key,
    scored_at,
    slot_at,
    success,
    value
)
SELECT
    CASE WHEN u.has_actual THEN u.actual END,
    nullif(u.reason, ''),
    u.model_id,
    u.performed_at,
    u.prediction_id,
    u.result,
    u.scope_key,
    coalesce(sqlc.narg('now')::timestamptz, now()),
    u.slot_at,
    u.success,
    CASE WHEN u.success THEN u.value END
FROM (
    SELECT
        unnest(@prediction_ids::text[]) AS prediction_id,
        unnest(@slots::timestamptz[]) AS slot_at,
        unnest(@model_ids::text[]) AS model_id,
        unnest(@scope_keys::text[]) AS scope_key,
        unnest(@performed_ats::timestamptz[]) AS performed_at,
        unnest(@results::jsonb[]) AS result,
        unnest(@successes::boolean[]) AS success,
        unnest(@score_values::double precision[]) AS value,
        unnest(@reasons::text[]) AS reason,
        unnest(@actuals::double precision[]) AS actual,
        unnest(@has_actuals::boolean[]) AS has_actual
) u
ON CONFLICT DO NOTHING;

-- SnapshotRecompute rebuilds the snapshots of the (model, bucket) pairs a scoring cycle
-- touched, from all successful scores in those buckets: the overall snapshot (scope_key
-- '') and one per scope. Recomputing (instead of adding) keeps a late score, a rerun or
-- a restart from counting anything twice. result_summary holds the mean of every numeric
-- field of the score results.
-- name: SnapshotRecompute :many
WITH touched AS (
    SELECT DISTINCT t.model_id, t.bucket
    FROM (
        SELECT unnest(@model_ids::text[]) AS model_id,
               unnest(@buckets::timestamptz[]) AS bucket
    ) t
),
base AS (
    SELECT s.model_id, s.scope_key, t.bucket, s.result
    FROM touched t
    JOIN scores s
      ON s.model_id = t.model_id
     AND s.performed_at >= t.bucket
     AND s.performed_at < t.bucket + make_interval(secs => @period_seconds::integer)
    WHERE s.success
),
counts AS (
    SELECT model_id, coalesce(scope_key, '') AS scope_key, bucket, count(*) AS n
    FROM base
    GROUP BY GROUPING SETS ((model_id, bucket), (model_id, scope_key, bucket))
),
means AS (
    SELECT model_id, coalesce(scope_key, '') AS scope_key, bucket, key,
           avg((value #>> '{}')::double precision) AS mean
    FROM base, jsonb_each(base.result) AS kv (key, value)
    WHERE jsonb_typeof(value) = 'number'
    GROUP BY GROUPING SETS ((model_id, bucket, key), (model_id, scope_key, bucket, key))
),
summary_objects AS (
    SELECT model_id, scope_key, bucket, jsonb_object_agg(key, mean) AS summary
    FROM means
    GROUP BY model_id, scope_key, bucket
),
summaries AS (
    SELECT c.model_id, c.scope_key, c.bucket, c.n, coalesce(o.summary, '{}') AS summary
    FROM counts c
    LEFT JOIN summary_objects o USING (model_id, scope_key, bucket)
)
INSERT INTO snapshots (
    id,
    model_id,
    period_end,
    period_start,
    prediction_count,
    result_summary,
    scope_key,
    updated_at,
    value
)
SELECT
    'SNAP_' || s.model_id || CASE WHEN s.scope_key = '' THEN '' ELSE '_' || s.scope_key END
        || '_' || to_char(s.bucket AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
    s.model_id,
    s.bucket + make_interval(secs => @period_seconds::integer),
    s.bucket,
    s.n,
    s.summary,
    s.scope_key,
    coalesce(sqlc.narg('now')::timestamptz, now()),
    CASE WHEN jsonb_typeof(s.summary -> @value_field::text) = 'number'
         THEN (s.summary ->> @value_field::text)::double precision END
FROM summaries s
ON CONFLICT (model_id, scope_key, period_start) DO UPDATE SET
    prediction_count = EXCLUDED.prediction_count,
    result_summary = EXCLUDED.result_summary,
    updated_at = EXCLUDED.updated_at,
    value = EXCLUDED.value
RETURNING *;

-- name: SnapshotSetContentHash :exec
UPDATE snapshots SET content_hash = @content_hash::text WHERE id = @id::text;

-- MetricPointList returns the successful scores of a window for metrics: the model's
-- numeric signal (the first numeric of value, expected_return, signal, prediction in its
-- output), the realised outcome and the score, keyed by slot and scope so models align
-- in time.
-- name: MetricPointList :many
SELECT
    s.model_id,
    s.scope_key,
    s.slot_at,
    s.performed_at,
    coalesce(s.value, 0)::double precision AS score,
    coalesce(s.actual, 'NaN')::double precision AS actual,
    coalesce(
        CASE WHEN jsonb_typeof(p.inference_output -> 'value') = 'number' THEN (p.inference_output ->> 'value')::double precision END,
        CASE WHEN jsonb_typeof(p.inference_output -> 'expected_return') = 'number' THEN (p.inference_output ->> 'expected_return')::double precision END,
        CASE WHEN jsonb_typeof(p.inference_output -> 'signal') = 'number' THEN (p.inference_output ->> 'signal')::double precision END,
        CASE WHEN jsonb_typeof(p.inference_output -> 'prediction') = 'number' THEN (p.inference_output ->> 'prediction')::double precision END,
        'NaN'
    )::double precision AS signal
FROM scores s
JOIN predictions p ON p.id = s.prediction_id AND p.slot_at = s.slot_at
JOIN models m ON m.id = s.model_id AND NOT m.virtual
WHERE s.success
  AND s.performed_at >= @since::timestamptz
ORDER BY s.model_id, s.performed_at, s.slot_at, s.scope_key;

-- SnapshotMergeMetrics adds window metrics to snapshots the cycle wrote, before they are
-- hashed and committed.
-- name: SnapshotMergeMetrics :exec
UPDATE snapshots s SET result_summary = s.result_summary || u.metrics
FROM (
    SELECT unnest(@ids::text[]) AS id, unnest(@metrics::jsonb[]) AS metrics
) u
WHERE s.id = u.id;

-- name: SnapshotListByIDs :many
SELECT * FROM snapshots WHERE id = ANY(@ids::text[]) ORDER BY id;
