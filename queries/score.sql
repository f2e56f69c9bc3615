-- ScoreQueueInsert records a tick's predictions as waiting to be scored; the predict
-- job writes it in the tick's transaction.
-- name: ScoreQueueInsert :exec
INSERT INTO score_queue (
    input_id,
    not_before,
    performed_at,
    prediction_config_id,
    resolvable_at,
    scope,
    slot_at
) VALUES (
    @input_id::text,
    @resolvable_at::timestamptz,
    @performed_at::timestamptz,
    @prediction_config_id::bigint,
    @resolvable_at::timestamptz,
    @scope::jsonb,
    @slot_at::timestamptz
)
ON CONFLICT DO NOTHING;

-- ScoreQueueClaim locks a batch of due ticks, skipping ticks another score process holds
-- (so several processes share the work and none scores a prediction twice), and resolves
-- each tick's ground-truth window in the same statement: the first and last feed record
-- of the tick's scope in [performed_at, resolvable_at], read through the primary key
-- index of the partition that holds them. Every prediction of a tick shares it.
-- name: ScoreQueueClaim :many
WITH claimed AS (
    SELECT q.prediction_config_id, q.slot_at, q.input_id, q.scope, q.performed_at,
           q.resolvable_at, q.attempts, q.not_before
    FROM score_queue q
    WHERE q.not_before <= coalesce(sqlc.narg('now')::timestamptz, now())
    ORDER BY q.not_before, q.prediction_config_id, q.slot_at
    LIMIT @max_ticks::integer
    FOR UPDATE SKIP LOCKED
)
SELECT
    c.prediction_config_id,
    c.slot_at,
    c.input_id,
    c.scope,
    c.performed_at,
    c.resolvable_at,
    c.attempts,
    -- The lateral joins find nothing when the window is empty; the flags say so, because
    -- sqlc cannot see that these columns become nullable.
    (f.ts_event IS NOT NULL)::boolean AS has_first,
    coalesce(f.ts_event, 'epoch')::timestamptz AS first_ts,
    coalesce(f.payload, '{}')::jsonb AS first_payload,
    (l.ts_event IS NOT NULL)::boolean AS has_last,
    coalesce(l.ts_event, 'epoch')::timestamptz AS last_ts,
    coalesce(l.payload, '{}')::jsonb AS last_payload
FROM claimed c
LEFT JOIN LATERAL (
    SELECT r.ts_event, r.payload
    FROM feed_records r
    WHERE r.source = c.scope ->> 'source'
      AND r.subject = c.scope ->> 'subject'
      AND r.kind = c.scope ->> 'kind'
      AND r.granularity = c.scope ->> 'granularity'
      AND r.ts_event >= c.performed_at
      AND r.ts_event <= c.resolvable_at
    ORDER BY r.ts_event
    LIMIT 1
) f ON true
LEFT JOIN LATERAL (
    SELECT r.ts_event, r.payload
    FROM feed_records r
    WHERE r.source = c.scope ->> 'source'
      AND r.subject = c.scope ->> 'subject'
      AND r.kind = c.scope ->> 'kind'
      AND r.granularity = c.scope ->> 'granularity'
      AND r.ts_event >= c.performed_at
      AND r.ts_event <= c.resolvable_at
    ORDER BY r.ts_event DESC
    LIMIT 1
) l ON true
ORDER BY c.not_before, c.prediction_config_id, c.slot_at;

-- ScoreQueueDelete removes ticks whose predictions are all scored or marked.
-- name: ScoreQueueDelete :exec
DELETE FROM score_queue q
USING (
    SELECT unnest(@config_ids::bigint[]) AS config_id,
           unnest(@slots::timestamptz[]) AS slot_at
) t
WHERE q.prediction_config_id = t.config_id AND q.slot_at = t.slot_at;

-- ScoreQueueDefer puts back ticks whose ground truth is not there yet, to be tried again
-- at not_before.
-- name: ScoreQueueDefer :exec
UPDATE score_queue q SET
    attempts = q.attempts + 1,
    not_before = @not_before::timestamptz
FROM (
    SELECT unnest(@config_ids::bigint[]) AS config_id,
           unnest(@slots::timestamptz[]) AS slot_at
) t
WHERE q.prediction_config_id = t.config_id AND q.slot_at = t.slot_at;

-- ScoreCopy writes a batch of scores with COPY. It never meets an existing score: the
-- predictions it scores were PENDING under the claimed tick's lock, and a score and its
-- prediction's status are written in the same transaction.
-- name: ScoreCopy :copyfrom
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
) VALUES (
    @actual,
    @failed_reason,
    @model_id,
    @performed_at,
    @prediction_id,
    @result,
    @scope_key,
    @scored_at,
    @slot_at,
    @success,
    @value
);

-- SnapshotDirtyMark records the (model, bucket) pairs whose snapshots a batch of scores
-- changed, in the batch's transaction; the run recomputes them once at its end.
-- name: SnapshotDirtyMark :exec
INSERT INTO snapshot_dirty (model_id, bucket)
SELECT unnest(@model_ids::text[]), unnest(@buckets::timestamptz[]);

-- SnapshotDirtyTake removes and returns up to max_rows marks, deduplicated, skipping
-- marks another score process is taking at the same moment.
-- name: SnapshotDirtyTake :many
WITH taken AS (
    DELETE FROM snapshot_dirty d
    WHERE d.ctid IN (
        SELECT ctid FROM snapshot_dirty
        LIMIT @max_rows::integer
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.model_id, d.bucket
)
SELECT DISTINCT model_id, bucket FROM taken;

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
-- One order for every writer: two score processes recomputing the same buckets wait for
-- each other instead of deadlocking.
ORDER BY s.model_id, s.scope_key, s.bucket
ON CONFLICT (model_id, scope_key, period_start) DO UPDATE SET
    prediction_count = EXCLUDED.prediction_count,
    result_summary = EXCLUDED.result_summary,
    updated_at = EXCLUDED.updated_at,
    value = EXCLUDED.value
RETURNING *;

-- SnapshotSetContentHashes stores the content hashes of the snapshots a cycle wrote.
-- name: SnapshotSetContentHashes :exec
UPDATE snapshots s SET content_hash = u.content_hash
FROM (
    SELECT unnest(@ids::text[]) AS id, unnest(@content_hashes::text[]) AS content_hash
) u
WHERE s.id = u.id;

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

-- ScoreListByBuckets returns every score of the given (model, bucket) pairs, failed ones
-- included, for an operator's MODEL_SCORE_AGGREGATOR.
-- name: ScoreListByBuckets :many
SELECT s.model_id, t.bucket::timestamptz AS bucket, s.scope_key, s.result, s.success,
       coalesce(s.failed_reason, '')::text AS failed_reason,
       coalesce(s.value, 0)::double precision AS value
FROM (
    SELECT DISTINCT unnest(@model_ids::text[]) AS model_id,
                    unnest(@buckets::timestamptz[]) AS bucket
) t
JOIN scores s
  ON s.model_id = t.model_id
 AND s.performed_at >= t.bucket
 AND s.performed_at < t.bucket + make_interval(secs => @period_seconds::integer)
ORDER BY s.model_id, t.bucket, s.performed_at, s.prediction_id;

-- SnapshotUpsertMany writes snapshots summarised by an operator's MODEL_SCORE_AGGREGATOR,
-- with the ids and value column SnapshotRecompute gives its own.
-- name: SnapshotUpsertMany :many
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
    'SNAP_' || u.model_id || CASE WHEN u.scope_key = '' THEN '' ELSE '_' || u.scope_key END
        || '_' || to_char(u.bucket AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
    u.model_id,
    u.bucket + make_interval(secs => @period_seconds::integer),
    u.bucket,
    u.prediction_count,
    u.summary,
    u.scope_key,
    coalesce(sqlc.narg('now')::timestamptz, now()),
    CASE WHEN jsonb_typeof(u.summary -> @value_field::text) = 'number'
         THEN (u.summary ->> @value_field::text)::double precision END
FROM (
    SELECT unnest(@model_ids::text[]) AS model_id,
           unnest(@scope_keys::text[]) AS scope_key,
           unnest(@buckets::timestamptz[]) AS bucket,
           unnest(@prediction_counts::integer[]) AS prediction_count,
           unnest(@summaries::jsonb[]) AS summary
) u
ORDER BY u.model_id, u.scope_key, u.bucket
ON CONFLICT (model_id, scope_key, period_start) DO UPDATE SET
    prediction_count = EXCLUDED.prediction_count,
    result_summary = EXCLUDED.result_summary,
    updated_at = EXCLUDED.updated_at,
    value = EXCLUDED.value
RETURNING *;
