-- FeedRecordUpsertMany writes a page of records in one statement: the arrays are
-- unnested into rows and upserted on the natural key, so a page fetched twice (a retried
-- job, a resumed backfill) changes nothing but ts_ingested.
-- name: FeedRecordUpsertMany :execrows
INSERT INTO feed_records (
    granularity,
    kind,
    meta,
    payload,
    source,
    subject,
    ts_event,
    ts_ingested
)
SELECT
    @granularity::text,
    @kind::text,
    unnest(@metas::jsonb[]),
    unnest(@payloads::jsonb[]),
    @source::text,
    @subject::text,
    unnest(@ts_events::timestamptz[]),
    coalesce(sqlc.narg('now')::timestamptz, now())
ON CONFLICT (source, subject, kind, granularity, ts_event) DO UPDATE SET
    meta = EXCLUDED.meta,
    payload = EXCLUDED.payload,
    ts_ingested = EXCLUDED.ts_ingested;

-- FeedRecordListNewest returns the newest records of a scope, newest first; the index
-- behind the primary key serves it backwards without a sort. `since`, when the caller
-- knows the records it wants are no older, spares Postgres planning and opening every
-- older daily partition. Only the columns a tick's input needs: the scope is the
-- caller's, and the other columns cost a predict tick decoding 120 rows of them.
-- name: FeedRecordListNewest :many
SELECT ts_event, payload FROM feed_records
WHERE source = @source::text
  AND subject = @subject::text
  AND kind = @kind::text
  AND granularity = @granularity::text
  AND ts_event <= coalesce(sqlc.narg('before')::timestamptz, 'infinity')
  AND ts_event >= coalesce(sqlc.narg('since')::timestamptz, '-infinity')
ORDER BY ts_event DESC
LIMIT @max_rows::integer;

-- name: FeedRecordListRange :many
SELECT * FROM feed_records
WHERE source = @source::text
  AND subject = @subject::text
  AND kind = @kind::text
  AND granularity = @granularity::text
  AND ts_event >= @start_ts::timestamptz
  AND ts_event <= @end_ts::timestamptz
ORDER BY ts_event
LIMIT @max_rows::integer;

-- FeedStateAdvance moves a scope's watermark forward, never back, in the same transaction
-- as the records it covers.
-- name: FeedStateAdvance :one
INSERT INTO feed_ingestion_state (
    granularity,
    kind,
    last_event_ts,
    meta,
    source,
    subject,
    updated_at
) VALUES (
    @granularity::text,
    @kind::text,
    sqlc.narg('last_event_ts')::timestamptz,
    @meta::jsonb,
    @source::text,
    @subject::text,
    coalesce(sqlc.narg('now')::timestamptz, now())
)
ON CONFLICT (source, subject, kind, granularity) DO UPDATE SET
    last_event_ts = greatest(feed_ingestion_state.last_event_ts, EXCLUDED.last_event_ts),
    meta = feed_ingestion_state.meta || EXCLUDED.meta,
    updated_at = EXCLUDED.updated_at
RETURNING *;

-- name: FeedStateGet :one
SELECT * FROM feed_ingestion_state
WHERE source = @source::text
  AND subject = @subject::text
  AND kind = @kind::text
  AND granularity = @granularity::text;

-- name: BackfillJobInsert :one
INSERT INTO backfill_jobs (
    created_at,
    end_ts,
    granularity,
    id,
    kind,
    source,
    start_ts,
    subject,
    updated_at
) VALUES (
    coalesce(sqlc.narg('now')::timestamptz, now()),
    @end_ts::timestamptz,
    @granularity::text,
    @id::text,
    @kind::text,
    @source::text,
    @start_ts::timestamptz,
    @subject::text,
    coalesce(sqlc.narg('now')::timestamptz, now())
)
RETURNING *;

-- name: BackfillJobGet :one
SELECT * FROM backfill_jobs WHERE id = @id::text;

-- name: BackfillJobList :many
SELECT * FROM backfill_jobs
WHERE (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status')::text)
ORDER BY created_at DESC
LIMIT 100;

-- BackfillJobProgress records a written page: the cursor moves forward and the counters
-- grow, in the transaction that wrote the page, so a crash resumes exactly after it.
-- name: BackfillJobProgress :one
UPDATE backfill_jobs SET
    cursor_ts = @cursor_ts::timestamptz,
    pages_fetched = pages_fetched + 1,
    records_written = records_written + @records::bigint,
    status = 'running',
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE id = @id::text
RETURNING *;

-- name: BackfillJobFinish :one
UPDATE backfill_jobs SET
    error = sqlc.narg('error')::text,
    status = @status::text,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE id = @id::text
RETURNING *;

-- FeedRecordCopy is the bulk path: COPY straight into the partitioned table. It is used
-- only for a page whose time range holds no record of its scope yet (the common case for
-- polls and backfills); a page that overlaps stored data takes FeedRecordUpsertMany.
-- name: FeedRecordCopy :copyfrom
INSERT INTO feed_records (
    granularity,
    kind,
    meta,
    payload,
    source,
    subject,
    ts_event,
    ts_ingested
) VALUES (
    @granularity,
    @kind,
    @meta,
    @payload,
    @source,
    @subject,
    @ts_event,
    @ts_ingested
);

-- FeedRecordExistsInRange says whether a scope already has a record in [start, end].
-- name: FeedRecordExistsInRange :one
SELECT EXISTS (
    SELECT 1 FROM feed_records
    WHERE source = @source::text
      AND subject = @subject::text
      AND kind = @kind::text
      AND granularity = @granularity::text
      AND ts_event >= @start_ts::timestamptz
      AND ts_event <= @end_ts::timestamptz
) AS found;

-- FeedExportDayList lists the (scope, UTC day) pairs covered by completed backfills, with
-- how many records each holds: the files of the Parquet data plane.
-- name: FeedExportDayList :many
WITH days AS (
    SELECT DISTINCT b.source, b.subject, b.kind, b.granularity,
           generate_series(date_trunc('day', b.start_ts AT TIME ZONE 'UTC'),
                           date_trunc('day', b.end_ts AT TIME ZONE 'UTC'),
                           interval '1 day')::date AS day
    FROM backfill_jobs b
    WHERE b.status = 'completed'
)
SELECT d.source, d.subject, d.kind, d.granularity, d.day,
       (SELECT count(*) FROM feed_records r
        WHERE r.source = d.source AND r.subject = d.subject AND r.kind = d.kind AND r.granularity = d.granularity
          AND r.ts_event >= d.day::timestamp AT TIME ZONE 'UTC'
          AND r.ts_event < (d.day + 1)::timestamp AT TIME ZONE 'UTC')::bigint AS records
FROM days d
ORDER BY d.source, d.subject, d.kind, d.granularity, d.day
LIMIT 5000;
