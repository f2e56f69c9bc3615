-- LeaderboardLatestGet is the version of the current leaderboard: the newest history row,
-- which the refresh job appends in the same transaction as it refreshes the view. The
-- report cache compares its id to decide whether to reload the view. It always returns
-- one row: id 0 (and created_at the epoch) while no refresh has run.
-- name: LeaderboardLatestGet :one
SELECT coalesce(l.id, 0)::bigint AS id,
       coalesce(l.created_at, 'epoch')::timestamptz AS created_at
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id, created_at FROM leaderboards ORDER BY id DESC LIMIT 1
) AS l ON true;

-- ScoreWindowBucketList feeds /reports/models/global and /reports/models/params: the
-- successful scores in [start_ts, end_ts] per model (and per scope when by_scope), split
-- by how many of the aggregation windows contain them, with the count and sum of their
-- values. One pass over the scores suffices because windows nest: `thresholds` are the
-- negated window lengths in seconds, ascending (longest window first), so width_bucket of
-- a score's negated age counts the windows whose length reaches back to it. The handler
-- adds the buckets up into each window's mean.
-- name: ScoreWindowBucketList :many
SELECT s.model_id,
       (CASE WHEN @by_scope::boolean THEN s.scope_key ELSE '' END)::text AS scope_key,
       width_bucket(
           extract(epoch FROM s.performed_at - coalesce(sqlc.narg('now')::timestamptz, now()))::double precision,
           @thresholds::double precision[]
       )::integer AS windows_in,
       count(*)::bigint AS score_count,
       sum(s.value)::double precision AS value_sum,
       max(s.performed_at)::timestamptz AS last_performed_at
FROM scores s
JOIN models m ON m.id = s.model_id
WHERE s.success
  AND s.value IS NOT NULL
  AND s.performed_at >= @start_ts::timestamptz
  AND s.performed_at <= @end_ts::timestamptz
  AND (cardinality(@model_ids::text[]) = 0 OR s.model_id = ANY(@model_ids::text[]))
  AND (@include_virtual::boolean OR NOT m.virtual)
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- ScheduleListForReport gives the horizon of each scope_key, which report rows flatten as
-- `horizon` for the UI's filters.
-- name: ScheduleListForReport :many
SELECT scope_key, scope_template, resolve_horizon_seconds
FROM scheduled_prediction_configs
ORDER BY scope_key;

-- PredictionScopeLatestGet is the scope of a model's newest prediction on a scope_key,
-- shown on /reports/models/params rows. The (model_id, performed_at) index serves it
-- backwards.
-- name: PredictionScopeLatestGet :one
SELECT p.scope
FROM predictions p
WHERE p.model_id = @model_id::text
  AND p.scope_key = @scope_key::text
  AND p.performed_at <= @end_ts::timestamptz
ORDER BY p.performed_at DESC
LIMIT 1;

-- SnapshotLatestList is the newest snapshot of each model (overall, or also per scope when
-- by_scope) whose period overlaps [start_ts, end_ts].
-- name: SnapshotLatestList :many
SELECT DISTINCT ON (sn.model_id, sn.scope_key)
       sn.model_id,
       sn.scope_key,
       sn.period_start,
       sn.period_end,
       sn.result_summary
FROM snapshots sn
JOIN models m ON m.id = sn.model_id
WHERE sn.period_end >= @start_ts::timestamptz
  AND sn.period_start <= @end_ts::timestamptz
  AND (@by_scope::boolean OR sn.scope_key = '')
  AND (cardinality(@model_ids::text[]) = 0 OR sn.model_id = ANY(@model_ids::text[]))
  AND (@include_virtual::boolean OR NOT m.virtual)
ORDER BY sn.model_id, sn.scope_key, sn.period_start DESC;

-- SnapshotListForSeries is /reports/models/metrics: the overall snapshots of the models
-- whose period overlaps [start_ts, end_ts], newest first so that a capped answer keeps
-- the recent end (the handler regroups them per model in time order). Callers pass a start
-- reaching back by the longest window so the rolling window values of the first points
-- see their full window.
-- name: SnapshotListForSeries :many
SELECT sn.model_id,
       sn.period_start,
       sn.period_end,
       sn.prediction_count,
       sn.result_summary,
       sn.updated_at
FROM snapshots sn
JOIN models m ON m.id = sn.model_id
WHERE sn.scope_key = ''
  AND sn.period_end >= @start_ts::timestamptz
  AND sn.period_start <= @end_ts::timestamptz
  AND (cardinality(@model_ids::text[]) = 0 OR sn.model_id = ANY(@model_ids::text[]))
  AND (@include_virtual::boolean OR NOT m.virtual)
ORDER BY sn.period_end DESC, sn.model_id
LIMIT @max_rows::integer;

-- SnapshotListNewest is /reports/snapshots: the newest snapshots first (the Python engine
-- returned the oldest N), optionally of one model and of periods overlapping
-- [since, until]. scope_key '' is the overall snapshot of a model.
-- name: SnapshotListNewest :many
SELECT sn.id,
       sn.model_id,
       sn.scope_key,
       sn.period_start,
       sn.period_end,
       sn.prediction_count,
       sn.result_summary,
       sn.created_at
FROM snapshots sn
JOIN models m ON m.id = sn.model_id
WHERE sn.scope_key = @scope_key::text
  AND (sqlc.narg('model_id')::text IS NULL OR sn.model_id = sqlc.narg('model_id')::text)
  AND (cardinality(@model_ids::text[]) = 0 OR sn.model_id = ANY(@model_ids::text[]))
  AND (sqlc.narg('since')::timestamptz IS NULL OR sn.period_end >= sqlc.narg('since')::timestamptz)
  AND (sqlc.narg('until')::timestamptz IS NULL OR sn.period_start <= sqlc.narg('until')::timestamptz)
  AND (@include_virtual::boolean OR NOT m.virtual)
ORDER BY sn.period_start DESC, sn.model_id
LIMIT @max_rows::integer;

-- PredictionListForReportNewest is /reports/predictions: the newest max_rows predictions
-- performed in [start_ts, end_ts] with their scores and schedule horizon. Taking the newest
-- (the handler returns them oldest first) keeps a capped answer useful: a chart wants the
-- recent end of its range.
-- name: PredictionListForReportNewest :many
SELECT p.model_id,
       p.prediction_config_id,
       p.scope_key,
       p.scope,
       p.status,
       p.failed_reason,
       p.performed_at,
       c.resolve_horizon_seconds,
       s.value AS score_value,
       s.success AS score_success,
       s.failed_reason AS score_failed_reason,
       s.scored_at
FROM predictions p
JOIN models m ON m.id = p.model_id
JOIN scheduled_prediction_configs c ON c.id = p.prediction_config_id
LEFT JOIN scores s ON s.prediction_id = p.id AND s.slot_at = p.slot_at
WHERE p.performed_at >= @start_ts::timestamptz
  AND p.performed_at <= @end_ts::timestamptz
  AND (cardinality(@model_ids::text[]) = 0 OR p.model_id = ANY(@model_ids::text[]))
  AND (@include_virtual::boolean OR NOT m.virtual)
ORDER BY p.performed_at DESC, p.model_id DESC
LIMIT @max_rows::integer;

-- FeedScopeListForReport is the first half of /reports/feeds: every scope that has a
-- watermark or records, with its watermark. The scopes of the records are found by a skip
-- scan of the primary key (one index probe per scope and partition), not a DISTINCT over
-- every record.
-- name: FeedScopeListForReport :many
WITH RECURSIVE record_scopes AS (
    (SELECT r.source, r.subject, r.kind, r.granularity
     FROM feed_records r
     ORDER BY r.source, r.subject, r.kind, r.granularity
     LIMIT 1)
    UNION ALL
    SELECT nx.source, nx.subject, nx.kind, nx.granularity
    FROM record_scopes rs
    CROSS JOIN LATERAL (
        SELECT r.source, r.subject, r.kind, r.granularity
        FROM feed_records r
        WHERE (r.source, r.subject, r.kind, r.granularity) > (rs.source, rs.subject, rs.kind, rs.granularity)
        ORDER BY r.source, r.subject, r.kind, r.granularity
        LIMIT 1
    ) nx
),
scopes AS (
    SELECT source, subject, kind, granularity FROM feed_ingestion_state
    UNION
    SELECT source, subject, kind, granularity FROM record_scopes
)
SELECT s.source,
       s.subject,
       s.kind,
       s.granularity,
       st.last_event_ts AS watermark_ts,
       st.updated_at AS watermark_updated_at
FROM scopes s
LEFT JOIN feed_ingestion_state st USING (source, subject, kind, granularity)
ORDER BY s.source, s.subject, s.kind, s.granularity;

-- FeedScopeStatsGet is the second half of /reports/feeds, one scope at a time: its oldest
-- and newest record (ordered primary key scans with LIMIT 1) and its record count, exact
-- up to count_cap through a bounded index-only scan of the newest records; cap_ts is the
-- oldest record counted, from which feedRecordCount extrapolates above the cap. Asked per
-- scope, each statement stays cheap in the planner's eyes too: one statement over all
-- scopes is estimated expensive enough to trigger JIT compilation, which costs seconds.
-- has_records false means the other times are the epoch.
-- name: FeedScopeStatsGet :one
SELECT (o.ts_event IS NOT NULL)::boolean AS has_records,
       coalesce(o.ts_event, 'epoch')::timestamptz AS oldest_ts,
       coalesce(n.ts_event, 'epoch')::timestamptz AS newest_ts,
       c.counted::bigint AS counted,
       coalesce(c.cap_ts, 'epoch')::timestamptz AS cap_ts
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT r.ts_event FROM feed_records r
    WHERE r.source = @source::text AND r.subject = @subject::text
      AND r.kind = @kind::text AND r.granularity = @granularity::text
    ORDER BY r.ts_event
    LIMIT 1
) o ON true
LEFT JOIN LATERAL (
    SELECT r.ts_event FROM feed_records r
    WHERE r.source = @source::text AND r.subject = @subject::text
      AND r.kind = @kind::text AND r.granularity = @granularity::text
    ORDER BY r.ts_event DESC
    LIMIT 1
) n ON true
CROSS JOIN LATERAL (
    SELECT count(*) AS counted, min(t.ts_event) AS cap_ts
    FROM (
        SELECT r.ts_event FROM feed_records r
        WHERE r.source = @source::text AND r.subject = @subject::text
          AND r.kind = @kind::text AND r.granularity = @granularity::text
        ORDER BY r.ts_event DESC
        LIMIT @count_cap::integer
    ) t
) c;

-- FeedRecordListTail is /reports/feeds/tail: the newest records first, each scope field
-- optional (the UI sends all four, which makes it a backwards primary key scan).
-- name: FeedRecordListTail :many
SELECT * FROM feed_records r
WHERE (sqlc.narg('source')::text IS NULL OR r.source = sqlc.narg('source')::text)
  AND (sqlc.narg('subject')::text IS NULL OR r.subject = sqlc.narg('subject')::text)
  AND (sqlc.narg('kind')::text IS NULL OR r.kind = sqlc.narg('kind')::text)
  AND (sqlc.narg('granularity')::text IS NULL OR r.granularity = sqlc.narg('granularity')::text)
ORDER BY r.ts_event DESC
LIMIT @max_rows::integer;
