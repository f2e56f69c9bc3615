-- ScheduleUpsert synchronises one scheduled prediction from crunch_config.yaml by its
-- natural key, keeping its id (predictions reference it).
-- name: ScheduleUpsert :one
INSERT INTO scheduled_prediction_configs (
    active,
    meta,
    prediction_interval_seconds,
    resolve_horizon_seconds,
    scope_key,
    scope_template,
    sort_order,
    updated_at
) VALUES (
    @active::boolean,
    @meta::jsonb,
    @prediction_interval_seconds::integer,
    @resolve_horizon_seconds::integer,
    @scope_key::text,
    @scope_template::jsonb,
    @sort_order::integer,
    coalesce(sqlc.narg('now')::timestamptz, now())
)
ON CONFLICT (scope_key) DO UPDATE SET
    active = EXCLUDED.active,
    meta = EXCLUDED.meta,
    prediction_interval_seconds = EXCLUDED.prediction_interval_seconds,
    resolve_horizon_seconds = EXCLUDED.resolve_horizon_seconds,
    scope_template = EXCLUDED.scope_template,
    sort_order = EXCLUDED.sort_order,
    updated_at = CASE
        WHEN (scheduled_prediction_configs.active, scheduled_prediction_configs.meta,
              scheduled_prediction_configs.prediction_interval_seconds,
              scheduled_prediction_configs.resolve_horizon_seconds,
              scheduled_prediction_configs.scope_template, scheduled_prediction_configs.sort_order)
           IS DISTINCT FROM
             (EXCLUDED.active, EXCLUDED.meta, EXCLUDED.prediction_interval_seconds,
              EXCLUDED.resolve_horizon_seconds, EXCLUDED.scope_template, EXCLUDED.sort_order)
        THEN EXCLUDED.updated_at
        ELSE scheduled_prediction_configs.updated_at
    END
RETURNING *;

-- ScheduleDeactivateExcept switches off schedules removed from the file; they are never
-- deleted because predictions keep referencing them.
-- name: ScheduleDeactivateExcept :execrows
UPDATE scheduled_prediction_configs
SET active = false,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE active
  AND NOT (scope_key = ANY(@keep::text[]));

-- name: ScheduleListActive :many
SELECT * FROM scheduled_prediction_configs
WHERE active
ORDER BY sort_order, id;

-- name: ScheduleGet :one
SELECT * FROM scheduled_prediction_configs WHERE id = @id::bigint;
